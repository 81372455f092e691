# Compare three lists of public functions: declared DEID_API in include/deid/*.h, committed in
# symbols.txt, and exported by libdeid.so. Any difference fails: an unimplemented declaration,
# an internal symbol leaking out, or an ABI change nobody wrote down.
# Run: cmake -DNM=nm -DLIBRARY=build/libdeid/libdeid.so -DINCLUDE=include
#            -DLIST=tests/packaging/symbols.txt [-DUPDATE=ON] -P tests/packaging/check_symbols.cmake
# UPDATE=ON rewrites symbols.txt from the headers (then review the diff).
cmake_minimum_required(VERSION 3.18)

# 1. Declared in the headers.
file(GLOB headers ${INCLUDE}/deid/*.h)
set(declared)
foreach(h ${headers})
  file(READ ${h} text)
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" text "${text}")  # drop comments
  string(REGEX MATCHALL "DEID_API[^;{(]*\\(" decls "${text}")
  foreach(d ${decls})
    string(REGEX MATCH "([A-Za-z_][A-Za-z0-9_]*)[ \t\n]*\\($" _ "${d}")
    set(name "${CMAKE_MATCH_1}")
    if(name MATCHES "^deid_")  # export.h's own macro definitions are not functions
      list(APPEND declared ${name})
    endif()
  endforeach()
endforeach()
list(SORT declared)
list(REMOVE_DUPLICATES declared)

if(UPDATE)
  list(JOIN declared "\n" out)
  file(WRITE ${LIST} "${out}\n")
  message(STATUS "wrote ${LIST}")
  return()
endif()

# 2. Committed.
file(STRINGS ${LIST} committed REGEX "^[A-Za-z_]")
list(SORT committed)

# 3. Exported (defined, global, in the dynamic symbol table).
execute_process(COMMAND ${NM} -D --defined-only --format=posix ${LIBRARY}
  OUTPUT_VARIABLE nm_out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIBRARY}")
endif()
string(REPLACE "\n" ";" lines "${nm_out}")
set(exported)
set(foreign)
foreach(line ${lines})
  if(line MATCHES "^([^ ]+) ([A-Za-z]) ")
    set(sym ${CMAKE_MATCH_1})
    set(type ${CMAKE_MATCH_2})
    if(sym MATCHES "^deid")
      list(APPEND exported ${sym})
    elseif(sym MATCHES "^(_init|_fini|_edata|_end|__bss_start)$")
      # defined by the linker in every shared object
    elseif(type MATCHES "^[TDBR]$")
      # Strong symbols of our own making that are not deid_*: visibility went wrong somewhere.
      # (Weak C++ template instances from GDCM's headers (W/V/u) are not ours to hide.)
      list(APPEND foreign ${sym})
    endif()
  endif()
endforeach()
list(SORT exported)

set(ok TRUE)
function(report title a b)  # items in list a missing from list b
  set(missing)
  foreach(x ${${a}})
    if(NOT x IN_LIST ${b})
      list(APPEND missing ${x})
    endif()
  endforeach()
  if(missing)
    list(JOIN missing "\n  " m)
    message(STATUS "${title}:\n  ${m}")
    set(ok FALSE PARENT_SCOPE)
  endif()
endfunction()
report("declared DEID_API in include/deid but not in symbols.txt (update the list)" declared committed)
report("in symbols.txt but no longer declared in include/deid (ABI break?)" committed declared)
report("in symbols.txt but not exported by the library (not implemented, or hidden)" committed exported)
report("exported by the library but not in symbols.txt (internal symbol leaking out?)" exported committed)
if(foreign)
  list(JOIN foreign "\n  " m)
  message(STATUS "exported symbols outside the deid_ namespace:\n  ${m}")
  set(ok FALSE)
endif()
if(NOT ok)
  message(FATAL_ERROR "exported symbols differ from tests/packaging/symbols.txt")
endif()
list(LENGTH exported n)
message(STATUS "libdeid exports exactly the ${n} committed deid_* symbols")
