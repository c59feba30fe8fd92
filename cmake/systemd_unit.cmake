# Derives the Debian package's systemd unit from examples/evstream.service (cmake -P, at build
# time): the binary is /usr/bin/evstream instead of /usr/local/bin/evstream, and the service runs
# as the package's static `evstream` user instead of a DynamicUser. Only the path prefix of the
# binary is substituted, so whatever arguments the example's ExecStart has are kept. A substitution
# that no longer applies fails the build rather than shipping a unit that silently differs.
#   cmake -DINPUT=examples/evstream.service -DOUTPUT=.../evstream.service -P systemd_unit.cmake
if(NOT DEFINED INPUT OR NOT DEFINED OUTPUT)
  message(FATAL_ERROR "systemd_unit.cmake: pass -DINPUT=<example unit> -DOUTPUT=<packaged unit>")
endif()
file(READ "${INPUT}" unit)

# The example's header explains a manual install; the package's unit gets its own.
string(FIND "${unit}" "[Unit]" body_start)
if(body_start EQUAL -1)
  message(FATAL_ERROR "${INPUT}: no [Unit] section")
endif()
string(SUBSTRING "${unit}" ${body_start} -1 unit)

string(REGEX MATCH "\nExecStart=/usr/local/bin/evstream[ \n]" exec_start "${unit}")
if(NOT exec_start)
  message(FATAL_ERROR "${INPUT}: no ExecStart=/usr/local/bin/evstream line to derive from")
endif()
string(REPLACE "/usr/local/bin/evstream" "/usr/bin/evstream" unit "${unit}")

string(REGEX MATCH "\nDynamicUser=yes\n" dynamic_user "${unit}")
if(NOT dynamic_user)
  message(FATAL_ERROR "${INPUT}: no DynamicUser=yes line to replace with the package's user")
endif()
string(REPLACE "\nDynamicUser=yes\n" "\nUser=evstream\nGroup=evstream\n" unit "${unit}")

set(header [=[
# evstream as a systemd service, installed by the evstream Debian package (derived from
# examples/evstream.service at build time). The package neither enables nor starts it:
#
#   sudo systemctl enable --now evstream
#   journalctl -u evstream -f                    # connect/disconnect/slow-consumer log lines
#
# It runs as the `evstream` system user, which can write /var/lib/evstream (the database) and
# nothing else. Back the database up with `evstream replay --db /var/lib/evstream/evstream.db >
# backup.ndjson` (read-only; works while the service runs). Settings live in /etc/evstream/serve.toml; tokens in /etc/evstream/evstream.env
# (mode 0600, EVSTREAM_TOKEN=...), not on the command line. Change anything else with a drop-in
# (`systemctl edit evstream`) rather than editing this file, which upgrades replace.

]=])
file(WRITE "${OUTPUT}.tmp" "${header}${unit}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
