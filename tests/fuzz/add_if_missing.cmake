# Passed as -DCMAKE_PROJECT_INCLUDE=<abs>/tests/fuzz/add_if_missing.cmake by
# scripts/fuzz.sh and scripts/sanitize.sh: adds the fuzz targets to the build
# when tests/CMakeLists.txt does not (yet) say add_subdirectory(fuzz). Runs at
# the end of the top-level CMakeLists.txt (a deferred call may not create a
# subdirectory, so it include()s tests/fuzz/CMakeLists.txt instead, which is
# written for both).
function(_loanledger_add_fuzz_if_missing)
  if(LOANLEDGER_BUILD_TESTS AND NOT TARGET fuzz_csv_line)
    message(STATUS "tests/fuzz: not added by tests/CMakeLists.txt; included by add_if_missing.cmake")
    include(${CMAKE_SOURCE_DIR}/tests/fuzz/CMakeLists.txt)
  endif()
endfunction()
cmake_language(DEFER CALL _loanledger_add_fuzz_if_missing)
