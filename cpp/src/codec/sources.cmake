# Codecs: vlen-bytes framing, zstd, blosc.
target_sources(zvf PRIVATE ${CMAKE_CURRENT_LIST_DIR}/codec.cpp)
