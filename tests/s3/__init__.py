"""Tests of zvf against an S3 server (moto) on 127.0.0.1; see conftest.py."""
