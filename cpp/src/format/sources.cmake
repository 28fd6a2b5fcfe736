# Pure format logic: error text, dtypes, grid math, fragment index, zarr.json documents.
target_sources(zvf PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/types.cpp
  ${CMAKE_CURRENT_LIST_DIR}/buffer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/grid.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fragments.cpp
  ${CMAKE_CURRENT_LIST_DIR}/metadata.cpp
)
