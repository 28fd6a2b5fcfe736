"""The HPC guide, run for real: Slurm, MPI, local disks + rsync, faults, the CLI (docs/hpc.md)."""
