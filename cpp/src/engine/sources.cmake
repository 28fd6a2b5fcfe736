# Engine: validation, sorting into storage order, cells, writes, partitions, finalise, reads.
target_sources(zvf PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/input.cpp
  ${CMAKE_CURRENT_LIST_DIR}/binning.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sorting.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cells.cpp
  ${CMAKE_CURRENT_LIST_DIR}/store_state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/write.cpp
  ${CMAKE_CURRENT_LIST_DIR}/partition.cpp
  ${CMAKE_CURRENT_LIST_DIR}/finalise.cpp
  ${CMAKE_CURRENT_LIST_DIR}/level.cpp
  ${CMAKE_CURRENT_LIST_DIR}/read.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pyramid.cpp
  ${CMAKE_CURRENT_LIST_DIR}/plan.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trace.cpp
)
