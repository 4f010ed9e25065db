#!/bin/sh
# Writes to stdout a script that runs the test program $2 (a sibling of the
# script) with VRANGE_BACKEND=$1, unless VRANGE_BACKEND is already set by
# whoever runs `make check`: that choice then wins for every run.
backend=$1
prog=$2
cat <<SCRIPT
#!/bin/sh
: "\${VRANGE_BACKEND:=$backend}"
export VRANGE_BACKEND
exec "\$(dirname "\$0")/$prog" "\$@"
SCRIPT
