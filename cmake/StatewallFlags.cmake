# Warnings, sanitizers and optimisation flags, applied PRIVATE to statewall targets only.
add_library(statewall_flags INTERFACE)
target_compile_options(statewall_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough -Wnull-dereference -Wformat=2
  # GCC 12 reports false -Wrestrict/-Wstringop-overflow on std::string inlined at -O3 (GCC PR 105329).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict -Wno-stringop-overflow>)
if(STATEWALL_WERROR)
  target_compile_options(statewall_flags INTERFACE -Werror)
endif()
if(STATEWALL_NATIVE)
  target_compile_options(statewall_flags INTERFACE -march=native)
endif()

if(STATEWALL_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(STATEWALL_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT STATEWALL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "STATEWALL_SANITIZE must be address, thread or empty")
endif()

# statewall_module(NAME SOURCES... [DEPS ...]) declares one module library with public headers in include/.
function(statewall_module name)
  cmake_parse_arguments(M "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${M_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC ${M_PUBLIC_DEPS} PRIVATE statewall_flags ${M_PRIVATE_DEPS})
endfunction()
