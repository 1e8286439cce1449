# Install-time half of cmake/Install.cmake (component server): the systemd
# unit and the default config file, with the paths of the prefix installed to
# (CMAKE_INSTALL_PREFIX here is the install-time one: /usr under cpack).
# In: LL_SOURCE_DIR, LL_STAGING_DIR (scratch space in the build tree), LL_BINDIR.
# file(INSTALL) honours DESTDIR, as install() does.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(ll_etc /etc/loanledger)             # Debian's layout (the .deb)
  set(ll_unit_dir /lib/systemd/system)    # where bookworm's packages put units
else()
  set(ll_etc ${CMAKE_INSTALL_PREFIX}/etc/loanledger)
  set(ll_unit_dir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(ll_bin ${CMAKE_INSTALL_PREFIX}/${LL_BINDIR})

# The unit of deploy/systemd/, pointed at the installed binary and config.
file(READ ${LL_SOURCE_DIR}/deploy/systemd/loanledgerd.service ll_unit)
string(REPLACE "/usr/local/bin/loanledgerd" "${ll_bin}/loanledgerd" ll_unit "${ll_unit}")
string(REPLACE "/etc/loanledger/" "${ll_etc}/" ll_unit "${ll_unit}")
string(PREPEND ll_unit "# Installed from deploy/systemd/loanledgerd.service by cmake --install or the loanledgerd
# package (cmake/Install.cmake), with ExecStart=${ll_bin}/loanledgerd; settings go in
# ${ll_etc}/loanledgerd.conf. The install steps below are those of a manual install.
")
file(MAKE_DIRECTORY ${LL_STAGING_DIR})
file(WRITE ${LL_STAGING_DIR}/loanledgerd.service "${ll_unit}")
file(INSTALL DESTINATION ${ll_unit_dir} TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES ${LL_STAGING_DIR}/loanledgerd.service)
# The config file the unit runs with (--config), with the same paths; read
# by the service user through the group (postinst: root:loanledger 0640).
set(ll_conf_source ${LL_SOURCE_DIR}/deploy/systemd/loanledgerd.conf)
if(EXISTS ${ll_conf_source})
  file(READ ${ll_conf_source} ll_conf)
  string(REPLACE "/etc/loanledger/" "${ll_etc}/" ll_conf "${ll_conf}")
  file(WRITE ${LL_STAGING_DIR}/loanledgerd.conf "${ll_conf}")
  file(INSTALL DESTINATION ${ll_etc} TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
       FILES ${LL_STAGING_DIR}/loanledgerd.conf)
else()
  message(WARNING "${ll_conf_source} does not exist: no default config file installed")
endif()
