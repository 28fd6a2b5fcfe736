# Codecs: vlen-bytes framing, zstd, blosc, gzip (zlib), crc32c (ISA-L).
target_sources(zvf PRIVATE ${CMAKE_CURRENT_LIST_DIR}/codec.cpp)
find_package(ZLIB REQUIRED)
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)
target_link_libraries(zvf PRIVATE ZLIB::ZLIB PkgConfig::ISAL)
