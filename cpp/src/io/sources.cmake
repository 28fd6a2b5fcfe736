# File formats for the CLI: .npy, CSV, PLY in; .npy, CSV out.
target_sources(zvf PRIVATE ${CMAKE_CURRENT_LIST_DIR}/input.cpp)
