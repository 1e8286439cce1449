# `cmake --install` rules, the CMake package of the client library and the
# CPack .deb packages (deploy/README.md, "Installing from the .deb packages"
# and "The client library in your own CMake build"). Included once from the
# root CMakeLists.txt, after every target it names.
#
# Components (cmake --install BUILD --component NAME; one .deb each):
#   dev    -> loanledger-dev:  include/loanledger/{client,schema}/*.h,
#             lib/libloanledger-client.a, lib/cmake/loanledger/ (find_package)
#   cli    -> loanledger:      bin/loanledger
#   server -> loanledgerd:     bin/loanledgerd, the systemd unit, the default
#             config file (/etc/loanledger/ when the prefix is /usr, as in
#             the .deb; PREFIX/etc/loanledger/ otherwise)
# The .debs are built from an existing build tree, nothing is recompiled:
#   cpack --config BUILD/CPackConfig.cmake -B OUTDIR
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# ---- loanledger::client ------------------------------------------------------
# One static archive with the client library and the schema/ and wire code it
# uses (their objects, as built for the CLI), so that the exported target has
# no internal targets behind it. client.h's public headers need only schema/;
# what the objects need at link time is OpenSSL and threads (Asio,
# FlatBuffers and nlohmann-json are header-only here). Nothing of NATS,
# RocksDB, spdlog or prometheus-cpp: loanledgerConfig.cmake finds only
# OpenSSL and Threads (Debian's cnats config is broken, see the root
# CMakeLists.txt: a bank's build must never need it).
add_library(loanledger_client_package STATIC
  $<TARGET_OBJECTS:loanledger_client>
  $<TARGET_OBJECTS:loanledger_schema>
  $<TARGET_OBJECTS:loanledger_wire>)
set_target_properties(loanledger_client_package PROPERTIES
  OUTPUT_NAME loanledger-client
  EXPORT_NAME client
  LINKER_LANGUAGE CXX
  ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/package)
target_include_directories(loanledger_client_package INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/loanledger>)
target_compile_features(loanledger_client_package INTERFACE cxx_std_20)
target_link_libraries(loanledger_client_package INTERFACE OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
add_library(loanledger::client ALIAS loanledger_client_package)

# client.h and the headers it includes (the consumer test compiles them).
install(FILES client/client.h client/endpoint.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loanledger/client COMPONENT dev)
install(FILES schema/category.h schema/check.h schema/date.h schema/event.h schema/host_port.h
              schema/limits.h schema/query.h schema/reason.h schema/status.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loanledger/schema COMPONENT dev)
install(TARGETS loanledger_client_package EXPORT loanledgerTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
set(LL_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/loanledger)
install(EXPORT loanledgerTargets NAMESPACE loanledger:: DESTINATION ${LL_CMAKE_PACKAGE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/loanledgerConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/package/loanledgerConfig.cmake
                              INSTALL_DESTINATION ${LL_CMAKE_PACKAGE_DIR})
# 0.x: a new minor version may change the API, so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package/loanledgerConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/package/loanledgerConfig.cmake
              ${PROJECT_BINARY_DIR}/package/loanledgerConfigVersion.cmake
        DESTINATION ${LL_CMAKE_PACKAGE_DIR} COMPONENT dev)

# ---- programs ----------------------------------------------------------------
install(TARGETS loanledger RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
install(TARGETS loanledgerd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
# The unit and the config file get the paths of the prefix installed to, which
# is known only at install time (cpack installs with prefix /usr).
install(CODE "set(LL_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
set(LL_STAGING_DIR \"${PROJECT_BINARY_DIR}/package/server\")
set(LL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
include(\"${CMAKE_CURRENT_LIST_DIR}/install_server_files.cmake\")"
        COMPONENT server)

# ---- .deb packages (CPack) ---------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME loanledger)
set(CPACK_PACKAGE_VENDOR loanledger)
set(CPACK_PACKAGE_CONTACT "loanledger maintainers <loanledger-maintainers@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "regulatory loan statistics")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server cli dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # NAME_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)    # Depends: from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME loanledgerd)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    "loanledger server (loanledgerd)\nloanledgerd keeps the loan ledger (RocksDB) and serves the protocol, the Prometheus metrics and the HTTP read API. Systemd service loanledgerd, user loanledger, data in /var/lib/loanledger, configuration in /etc/loanledger/loanledgerd.conf; not started until enabled.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_LIST_DIR}/deb/conffiles;${CMAKE_CURRENT_LIST_DIR}/deb/postinst;${CMAKE_CURRENT_LIST_DIR}/deb/prerm;${CMAKE_CURRENT_LIST_DIR}/deb/postrm")
set(CPACK_DEBIAN_CLI_PACKAGE_NAME loanledger)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION net)
set(CPACK_DEBIAN_CLI_DESCRIPTION
    "loanledger command-line client\nThe loanledger CLI: submits CSV files, queries reports and series, runs admin commands, makes tokens.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME loanledger-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libssl-dev")  # find_dependency(OpenSSL)
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "loanledger client library for C++ (static) and its CMake package\nIn a CMake build: find_package(loanledger) and link loanledger::client.")
include(CPack)
