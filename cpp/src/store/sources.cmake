# Store layer: keys -> bytes. Backends own their durability contract.
target_sources(zvf PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/list_dir.cpp
  ${CMAKE_CURRENT_LIST_DIR}/posix_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/memory_store.cpp
)
