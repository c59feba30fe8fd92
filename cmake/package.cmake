# The Debian package (`make deb`: CPack's DEB generator): install() rules for the Debian layout and
# the CPack settings. These rules describe the package only; `make install` (Makefile, PREFIX) is
# the way to install a build by hand, and does not use them.
#
#   /usr/bin/evstream                                  stripped by CPack
#   /usr/share/man/man1/evstream.1.gz                  man/evstream.1
#   /usr/share/bash-completion/completions/evstream    completions/ (bash, zsh, fish)
#   /usr/share/zsh/vendor-completions/_evstream
#   /usr/share/fish/vendor_completions.d/evstream.fish
#   /lib/systemd/system/evstream.service               derived from examples/evstream.service
#   /etc/evstream/serve.toml                           packaging/serve.toml, a conffile
#   /usr/share/doc/evstream/copyright                  packaging/copyright
#   /usr/share/doc/evstream/changelog.gz               CHANGELOG.md as a Debian changelog
# The maintainer scripts (packaging/postinst, prerm, postrm) make the `evstream` user and
# /var/lib/evstream; neither is a file of the package.

set(EVSTREAM_DEB_MAINTAINER
    "evstream maintainers <maintainers@users.noreply.r-seed-95045029.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(PACKAGING_DIR ${CMAKE_BINARY_DIR}/packaging)
set(PACKAGED_UNIT ${PACKAGING_DIR}/evstream.service)
set(PACKAGED_MAN ${PACKAGING_DIR}/evstream.1.gz)
set(PACKAGED_CHANGELOG ${PACKAGING_DIR}/changelog.gz)
file(MAKE_DIRECTORY ${PACKAGING_DIR})

add_custom_command(
  OUTPUT ${PACKAGED_UNIT}
  COMMAND ${CMAKE_COMMAND} -DINPUT=${CMAKE_SOURCE_DIR}/examples/evstream.service
          -DOUTPUT=${PACKAGED_UNIT} -P ${CMAKE_SOURCE_DIR}/cmake/systemd_unit.cmake
  DEPENDS ${CMAKE_SOURCE_DIR}/examples/evstream.service ${CMAKE_SOURCE_DIR}/cmake/systemd_unit.cmake
  COMMENT "Deriving the packaged systemd unit from examples/evstream.service")
# gzip -n: no name or time stamp in the header, so the same input gives the same package.
add_custom_command(
  OUTPUT ${PACKAGED_MAN}
  COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/man/evstream.1 > ${PACKAGED_MAN}
  DEPENDS ${CMAKE_SOURCE_DIR}/man/evstream.1)
add_custom_command(
  OUTPUT ${PACKAGED_CHANGELOG}
  COMMAND ${CMAKE_COMMAND} -DINPUT=${CMAKE_SOURCE_DIR}/CHANGELOG.md -DOUTPUT=${PACKAGED_CHANGELOG}
          "-DMAINTAINER=${EVSTREAM_DEB_MAINTAINER}" -P ${CMAKE_SOURCE_DIR}/cmake/debian_changelog.cmake
  DEPENDS ${CMAKE_SOURCE_DIR}/CHANGELOG.md ${CMAKE_SOURCE_DIR}/cmake/debian_changelog.cmake
  COMMENT "Writing CHANGELOG.md as the package's Debian changelog"
  VERBATIM)  # the maintainer's <mail> must reach cmake, not the shell
add_custom_target(package_files ALL DEPENDS ${PACKAGED_UNIT} ${PACKAGED_MAN} ${PACKAGED_CHANGELOG})

set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
# Relative destinations are under CPACK_PACKAGING_INSTALL_PREFIX (/usr); /etc and /lib are not.
install(TARGETS evstream RUNTIME DESTINATION bin)
install(FILES ${PACKAGED_MAN} DESTINATION share/man/man1)
install(FILES completions/evstream.bash DESTINATION share/bash-completion/completions
        RENAME evstream)
install(FILES completions/_evstream DESTINATION share/zsh/vendor-completions)
install(FILES completions/evstream.fish DESTINATION share/fish/vendor_completions.d)
install(FILES ${PACKAGED_UNIT} DESTINATION /lib/systemd/system)
install(FILES packaging/serve.toml DESTINATION /etc/evstream)
install(FILES packaging/copyright ${PACKAGED_CHANGELOG} DESTINATION share/doc/evstream)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME evstream)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "real-time JSON events over WebSocket, persisted in SQLite")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION [=[
evstream carries JSON events from a video-detection pipeline to every dashboard
and terminal in milliseconds, with nothing lost. It is one binary: a WebSocket
broadcaster that commits every event to SQLite before anyone sees it (serve),
with REST, Prometheus metrics and a live dashboard on the same port, and the
terminal tools around it (publish, tail, replay, loadtest).
.
This package runs the server as a systemd service (not enabled by default)
under its own evstream user, configured in /etc/evstream/serve.toml.]=])
set(CPACK_PACKAGE_CONTACT "${EVSTREAM_DEB_MAINTAINER}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # evstream_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; adduser is what postinst runs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
# lws loads its libev glue as a plugin, which dpkg-shlibdeps cannot see: loadtest waits with epoll
# through it, and falls back to poll() (warning that it costs more CPU) without it.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libwebsockets-evlib-ev")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/conffiles ${CMAKE_SOURCE_DIR}/packaging/postinst
    ${CMAKE_SOURCE_DIR}/packaging/prerm ${CMAKE_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
