// zarr_vectors._zvf: the Python face of libzvf. Arrays cross without copies
// (inputs are borrowed, outputs hand their buffer to numpy through a capsule),
// and the GIL is released for all engine work. zvf::Error becomes the matching
// class of zarr_vectors.errors in exactly one place (translate_errors).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "zvf/error.hpp"
#include "zvf/plan.hpp"
#include "zvf/points.hpp"
#include "zvf/pyramid.hpp"
#include "zvf/validate.hpp"

namespace py = pybind11;
using namespace zvf;

namespace {

py::object error_class(Error::Code code) {
  const char* name = "ZvfError";
  switch (code) {
    case Error::Code::InvalidArgument: name = "InvalidInputError"; break;
    case Error::Code::NotFound: name = "StoreNotFoundError"; break;
    case Error::Code::Corrupt: name = "CorruptStoreError"; break;
    case Error::Code::Conflict: name = "PartitionConflictError"; break;
    case Error::Code::IO: name = "StoreIOError"; break;
    case Error::Code::Unsupported: name = "UnsupportedStoreError"; break;
  }
  return py::module_::import("zarr_vectors.errors").attr(name);
}

void translate_errors(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const Error& e) {
    PyErr_SetString(error_class(e.code()).ptr(), e.what());
  }
}

DType dtype_of(const py::array& a, const std::string& what) {
  const auto dt = a.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4) return DType::F32;
  if (kind == 'f' && size == 8) return DType::F64;
  if (kind == 'f' && size == 2) return DType::F16;
  if (kind == 'b' && size == 1) return DType::Bool;
  if (kind == 'i' || kind == 'u') {
    static const DType si[] = {DType::I8, DType::I16, DType::I32, DType::I64};
    static const DType ui[] = {DType::U8, DType::U16, DType::U32, DType::U64};
    int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : size == 8 ? 3 : -1;
    if (k >= 0) return kind == 'i' ? si[k] : ui[k];
  }
  throw Error(Error::Code::InvalidArgument,
              what + " has dtype " + std::string(py::str(dt)) +
                  "; expected a numeric dtype (float16..float64, int8..int64, uint8..uint64, bool)");
}

// Borrows a C-contiguous numpy array (the Python layer makes it contiguous).
ArrayView view_of(const py::array& a, const std::string& what) {
  if (!(a.flags() & py::array::c_style)) throw Error(Error::Code::InvalidArgument, what + " must be C-contiguous");
  ArrayView v;
  v.data = a.data();
  v.dtype = dtype_of(a, what);
  if (a.ndim() == 1) {
    v.rows = static_cast<std::size_t>(a.shape(0));
    v.one_d = true;
  } else if (a.ndim() == 2) {
    v.rows = static_cast<std::size_t>(a.shape(0));
    v.cols = static_cast<std::size_t>(a.shape(1));
  } else {
    throw Error(Error::Code::InvalidArgument, what + " has " + std::to_string(a.ndim()) +
                                                  " dimensions; expected shape (N,) or (N, C)");
  }
  return v;
}

py::array to_numpy(OwnedArray&& a) {
  auto* holder = new ArrayBytes(std::move(a.data));
  py::capsule owner(holder, [](void* p) { delete static_cast<ArrayBytes*>(p); });
  std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(a.rows)};
  if (!a.one_d) shape.push_back(static_cast<py::ssize_t>(a.cols));
  return py::array(py::dtype(dtype_name(a.dtype)), shape, holder->data(), owner);
}

Layout layout_of(const std::vector<double>& chunk, const std::optional<std::vector<double>>& bin,
                 const std::string& compressor) {
  return {chunk, bin.value_or(std::vector<double>{}), CodecSpec::from_name(compressor)};
}

std::vector<NamedArray> attrs_of(const std::vector<std::pair<std::string, py::array>>& attrs) {
  std::vector<NamedArray> out;
  for (const auto& [name, arr] : attrs) out.push_back({name, view_of(arr, "attribute '" + name + "'")});
  return out;
}

Exec exec_of(int threads, const std::optional<py::function>& progress, bool durable = false) {
  Exec e;
  e.threads = threads;
  e.durable = durable;
  if (progress) {
    // Progress runs on the calling thread, which holds no GIL during engine work.
    py::function fn = *progress;
    e.progress = [fn](std::uint64_t done, std::uint64_t total) {
      py::gil_scoped_acquire gil;
      fn(done, total);
    };
  }
  return e;
}

py::object box_or_none(const std::optional<Box>& b) {
  if (!b) return py::none();
  return py::make_tuple(py::cast(b->lo), py::cast(b->hi));
}

}  // namespace

PYBIND11_MODULE(_zvf, m) {
  m.doc() = "Native engine of zarr_vectors (libzvf). Use the zarr_vectors package, not this module.";
  py::register_exception_translator(&translate_errors);
  m.attr("ZV_VERSION") = kZvVersion;

  m.def(
      "write_points",
      [](const std::string& url, const py::array& positions,
         const std::vector<std::pair<std::string, py::array>>& attributes, const std::vector<double>& chunk,
         const std::optional<std::vector<double>>& bin, const std::optional<std::pair<std::vector<double>, std::vector<double>>>& bounds,
         const std::string& compressor, int threads, const std::optional<py::function>& progress, bool durable) {
        ArrayView pos = view_of(positions, "positions");
        auto attrs = attrs_of(attributes);
        Layout layout = layout_of(chunk, bin, compressor);
        std::optional<Box> box;
        if (bounds) box = Box{bounds->first, bounds->second};
        Exec exec = exec_of(threads, progress, durable);
        WriteSummary s;
        {
          py::gil_scoped_release nogil;
          auto store = open_store_url(url);
          s = write_points(*store, pos, attrs, layout, box, exec);
        }
        return py::dict(py::arg("vertex_count") = s.vertex_count, py::arg("chunk_count") = s.chunk_count,
                        py::arg("bins_per_chunk") = py::tuple(py::cast(s.bins_per_chunk)));
      },
      py::arg("url"), py::arg("positions"), py::arg("attributes"), py::arg("chunk_shape"), py::arg("bin_shape"),
      py::arg("bounds"), py::arg("compressor"), py::arg("threads") = 0, py::arg("progress") = py::none(),
      py::arg("durable") = false);

  m.def(
      "write_points_partition",
      [](const std::string& url, const py::array& positions,
         const std::vector<std::pair<std::string, py::array>>& attributes, const std::vector<double>& chunk,
         const std::optional<std::vector<double>>& bin, const std::vector<double>& lo, const std::vector<double>& hi,
         const std::string& compressor, int threads, const std::optional<py::function>& progress, bool durable) {
        ArrayView pos = view_of(positions, "positions");
        auto attrs = attrs_of(attributes);
        Layout layout = layout_of(chunk, bin, compressor);
        Exec exec = exec_of(threads, progress, durable);
        PartitionSummary s;
        {
          py::gil_scoped_release nogil;
          auto store = open_store_url(url);
          s = write_points_partition(*store, pos, attrs, layout, Box{lo, hi}, exec);
        }
        return py::dict(py::arg("partition_id") = s.partition_id, py::arg("vertex_count") = s.vertex_count,
                        py::arg("chunks_in_place") = s.chunks_in_place, py::arg("chunks_staged") = s.chunks_staged);
      },
      py::arg("url"), py::arg("positions"), py::arg("attributes"), py::arg("chunk_shape"), py::arg("bin_shape"),
      py::arg("range_lo"), py::arg("range_hi"), py::arg("compressor"), py::arg("threads") = 0,
      py::arg("progress") = py::none(), py::arg("durable") = false);

  m.def(
      "finalise",
      [](const std::string& url, bool allow_gaps, int threads, bool durable) {
        FinaliseReport r;
        {
          py::gil_scoped_release nogil;
          auto store = open_store_url(url);
          r = finalise(*store, FinaliseOptions{allow_gaps}, Exec{threads, {}, durable});
        }
        return py::dict(py::arg("changed") = r.changed, py::arg("merged") = r.merged,
                        py::arg("vertex_count") = r.vertex_count, py::arg("chunk_count") = r.chunk_count,
                        py::arg("bounds") = box_or_none(r.bounds), py::arg("gaps") = r.gaps,
                        py::arg("pyramid_dropped") = r.pyramid_dropped,
                        py::arg("orphans_removed") = r.orphans_removed);
      },
      py::arg("url"), py::arg("allow_gaps") = false, py::arg("threads") = 0, py::arg("durable") = false);

  m.def(
      "read_points",
      [](const std::string& url, int level, const std::optional<std::pair<std::vector<double>, std::vector<double>>>& bbox,
         const std::optional<std::vector<std::string>>& attributes, int threads) {
        ReadOptions opt;
        opt.level = level;
        if (bbox) opt.bbox = Box{bbox->first, bbox->second};
        opt.attributes = attributes;
        PointCloud pc;
        {
          py::gil_scoped_release nogil;
          auto store = open_store_url(url);
          pc = read_points(*store, opt, Exec{threads, {}});
        }
        py::dict attrs, categories;
        for (auto& [name, arr] : pc.attributes) attrs[py::str(name)] = to_numpy(std::move(arr));
        for (const auto& [name, cats] : pc.categories) categories[py::str(name)] = py::cast(cats);
        py::list skipped;
        for (const auto& [name, why] : pc.skipped) skipped.append(py::make_tuple(name, why));
        return py::make_tuple(to_numpy(std::move(pc.positions)), attrs, categories, skipped);
      },
      py::arg("url"), py::arg("level") = 0, py::arg("bbox") = py::none(), py::arg("attributes") = py::none(),
      py::arg("threads") = 0);

 m.def(
      "build_pyramid",
      [](const std::string& url, const std::vector<std::pair<double, double>>& factors,
         const std::optional<std::vector<std::vector<std::int64_t>>>& chunk_scale,
         const std::map<std::string, std::string>& reductions, bool overwrite, int part_index, int part_count,
         bool finalise_parts, int threads, const std::optional<py::function>& progress, bool durable) {
        PyramidOptions opt;
        for (const auto& [c, sp] : factors) opt.levels.push_back({c, sp, {}});
        if (chunk_scale) {
          if (chunk_scale->size() != factors.size())
            throw Error(Error::Code::InvalidArgument, "chunk_scale_factors has " + std::to_string(chunk_scale->size()) +
                                                          " entries; expected one per factor (" +
                                                          std::to_string(factors.size()) + ")");
          for (std::size_t i = 0; i < factors.size(); ++i) opt.levels[i].chunk_scale = (*chunk_scale)[i];
        }
        for (const auto& [name, r] : reductions) opt.reductions[name] = reduction_from_name(r);
        opt.overwrite = overwrite;
        opt.part_index = part_index;
        opt.part_count = part_count;
        opt.finalise_parts = finalise_parts;
        Exec exec = exec_of(threads, progress, durable);
        PyramidReport r;
        {
          py::gil_scoped_release nogil;
          auto store = open_store_url(url);
          r = build_pyramid(*store, opt, exec);
        }
        py::list levels;
        for (const auto& l : r.levels)
          levels.append(py::dict(py::arg("level") = l.level, py::arg("vertex_count") = l.vertex_count,
                                 py::arg("chunk_shape") = py::tuple(py::cast(l.chunk_shape)),
                                 py::arg("bin_shape") = py::tuple(py::cast(l.bin_shape)),
                                 py::arg("chunk_count") = l.chunk_count));
        return py::dict(py::arg("changed") = r.changed, py::arg("complete") = r.complete, py::arg("levels") = levels);
      },
      py::arg("url"), py::arg("factors"), py::arg("chunk_scale"), py::arg("reductions"), py::arg("overwrite"),
      py::arg("part_index"), py::arg("part_count"), py::arg("finalise_parts"), py::arg("threads") = 0,
      py::arg("progress") = py::none(), py::arg("durable") = false);

  m.def(
      "select_level",
      [](const std::string& url, const std::vector<double>& lo, const std::vector<double>& hi, std::uint64_t min_points,
         int threads) {
        py::gil_scoped_release nogil;
        auto store = open_store_url(url);
        return select_level(*store, Box{lo, hi}, min_points, Exec{threads, {}});
      },
      py::arg("url"), py::arg("lo"), py::arg("hi"), py::arg("min_points"), py::arg("threads") = 0);

  // Raw key access to any store URL, for tests of the store layer (multipart
  // uploads, credential sources) from Python. Not part of the public API.
  m.def(
      "_store_set",
      [](const std::string& url, const std::string& key, py::bytes value) {
        const std::string_view v = value;  // borrowed: the GIL keeps `value` alive
        py::gil_scoped_release nogil;
        open_store_url(url)->set(key, ByteSpan(reinterpret_cast<const std::uint8_t*>(v.data()), v.size()));
      },
      py::arg("url"), py::arg("key"), py::arg("value"));
  m.def(
      "_store_get",
      [](const std::string& url, const std::string& key) -> py::object {
        std::optional<Bytes> v;
        {
          py::gil_scoped_release nogil;
          v = open_store_url(url)->get(key);
        }
        if (!v) return py::none();
        return py::bytes(reinterpret_cast<const char*>(v->data()), v->size());
      },
      py::arg("url"), py::arg("key"));

  m.def("list_partitions", [](const std::string& url) {
    std::vector<PartitionState> parts;
    {
      py::gil_scoped_release nogil;
      parts = list_partitions(*open_store_url(url));
    }
    py::list out;
    for (const auto& p : parts)
      out.append(py::dict(py::arg("id") = p.id, py::arg("complete") = p.complete,
                          py::arg("range") = py::make_tuple(py::cast(p.range.lo), py::cast(p.range.hi)),
                          py::arg("vertex_count") = p.vertex_count));
    return out;
  });

  m.def(
      "plan_chunks",
      [](std::uint64_t count, const std::vector<double>& lo, const std::vector<double>& hi,
         const std::vector<std::tuple<std::string, std::string, std::int64_t>>& attributes,
         const std::string& positions_dtype, double occupancy, double min_bytes, double max_bytes,
         const std::optional<double>& target, const std::string& compressor, double compression_ratio,
         std::int64_t partitions, const std::optional<std::size_t>& axis, std::int64_t bins_per_axis) {
        PlanRequest r;
        r.point_count = count;
        r.bounds = Box{lo, hi};
        r.positions_dtype = dtype_from_name(positions_dtype);
        for (const auto& [name, dtype, components] : attributes)
          r.attributes.push_back({name, dtype_from_name(dtype), components});
        r.occupancy = occupancy;
        r.min_bytes = min_bytes;
        r.max_bytes = max_bytes;
        r.target_bytes = target;
        r.codec = CodecSpec::from_name(compressor);
        r.compression_ratio = compression_ratio;
        r.partitions = partitions;
        r.partition_axis = axis;
        r.bins_per_axis = bins_per_axis;
        const ChunkPlan p = plan_chunks(r);
        py::list arrays, parts;
        for (const auto& a : p.arrays)
          arrays.append(py::dict(py::arg("name") = a.name, py::arg("cell_dir") = a.cell_dir,
                                 py::arg("row_bytes") = a.row_bytes, py::arg("mean_bytes") = a.mean_bytes,
                                 py::arg("full_bytes") = a.full_bytes,
                                 py::arg("stripe_size") = stripe_size_for(a.full_bytes)));
        for (const auto& pr : p.partitions)
          parts.append(py::dict(py::arg("lo") = pr.lo, py::arg("hi") = pr.hi, py::arg("first_layer") = pr.first_layer,
                                py::arg("layers") = pr.layer_count));
        py::dict out;
        out["chunk_shape"] = py::tuple(py::cast(p.chunk_shape));
        out["bin_shape"] = py::tuple(py::cast(p.bin_shape));
        out["bins_per_chunk"] = py::tuple(py::cast(p.bins_per_chunk));
        out["grid_origin"] = py::tuple(py::cast(p.grid_origin));
        out["grid_shape"] = py::tuple(py::cast(p.grid_shape));
        out["chunk_count"] = p.chunk_count;
        out["nonempty_chunks"] = p.nonempty_chunks;
        out["points_per_chunk"] = p.points_per_chunk;
        out["full_chunk_points"] = p.full_chunk_points;
        out["bytes_per_chunk"] = p.bytes_per_chunk;
        out["full_chunk_bytes"] = p.full_chunk_bytes;
        out["band"] = py::make_tuple(p.min_bytes, p.max_bytes);
        out["target_bytes"] = p.target_bytes;
        out["in_band"] = p.in_band;
        out["compressor"] = p.codec;
        out["compression_ratio"] = p.compression_ratio;
        out["arrays"] = arrays;
        out["files"] = p.files;
        out["max_dir_entries"] = p.max_dir_entries;
        out["partition_axis"] = axis_name(p.partition_axis);
        out["partitions_aligned"] = p.partitions_aligned;
        out["partitions"] = parts;
        out["warnings"] = p.warnings;
        out["notes"] = p.notes;
        return out;
      },
      py::arg("count"), py::arg("lo"), py::arg("hi"), py::arg("attributes"), py::arg("positions_dtype"),
      py::arg("occupancy"), py::arg("min_bytes"), py::arg("max_bytes"), py::arg("target"), py::arg("compressor"),
      py::arg("compression_ratio"), py::arg("partitions"), py::arg("axis"), py::arg("bins_per_axis"));

  m.def("store_info", [](const std::string& url) {
    StoreInfo info;
    {
      py::gil_scoped_release nogil;
      info = store_info(*open_store_url(url));
    }
    py::list attrs, levels;
    for (const auto& a : info.attributes)
      attrs.append(py::dict(py::arg("name") = a.name,
                            py::arg("dtype") = a.readable ? py::object(py::str(dtype_name(a.dtype))) : py::none(),
                            py::arg("row_shape") = py::tuple(py::cast(a.row_shape)), py::arg("note") = a.note));
    for (const auto& l : info.levels)
      levels.append(py::dict(py::arg("level") = l.level, py::arg("vertex_count") = l.vertex_count,
                             py::arg("chunk_shape") = py::tuple(py::cast(l.chunk_shape)),
                             py::arg("bin_shape") = py::tuple(py::cast(l.bin_shape)),
                             py::arg("grid_shape") = py::tuple(py::cast(l.grid_shape)),
                             py::arg("grid_origin") = py::tuple(py::cast(l.grid_origin)),
                             py::arg("nonempty_chunks") = l.nonempty_chunks));
    return py::dict(py::arg("zv_version") = info.zv_version, py::arg("ndim") = info.ndim,
                    py::arg("dtype") = dtype_name(info.dtype),
                    py::arg("bounds") = py::make_tuple(py::cast(info.bounds.lo), py::cast(info.bounds.hi)),
                    py::arg("compressor") = info.codec, py::arg("attributes") = attrs, py::arg("levels") = levels);
  });
  m.def(
      "validate",
      [](const std::string& url, int level, int threads) {
        ValidationReport report;
        {
          py::gil_scoped_release nogil;
          auto store = open_store_url(url);
          report = validate_store(*store, ValidateOptions{level}, Exec{threads, {}});
        }
        py::list findings;
        for (const auto& f : report.findings)
          findings.append(py::dict(py::arg("level") = f.level, py::arg("severity") = severity_name(f.severity),
                                   py::arg("key") = f.key, py::arg("message") = f.message));
        return py::dict(py::arg("level") = report.level, py::arg("ok") = report.ok(), py::arg("findings") = findings,
                        py::arg("passed") = report.passed);
      },
      py::arg("url"), py::arg("level") = 3, py::arg("threads") = 0);
}
