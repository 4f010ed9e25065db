#!/bin/sh
# Writes to stdout a script that runs the test program $2 (a sibling of the
# script) under LD_PRELOAD=$1 (the built libvrange_preload.so, an absolute
# path), ahead of anything the caller preloads. $3, if not empty, is a C++
# plugin for the test to dlopen. $4, if given, is a reason to skip instead:
# in the sanitizer builds the sanitizer runtime must come first in the
# process and owns malloc itself, so the shim cannot be tested there.
# An empty $1 writes a plain wrapper, for a test linked with the library.
preload=$1
prog=$2
plugin=$3
skip=$4
if [ -n "$skip" ]; then
	cat <<SCRIPT
#!/bin/sh
echo "1..0 # SKIP $skip"
exit 0
SCRIPT
	exit 0
fi
if [ -z "$preload" ]; then
	# A test linked with the library itself: run it as it is.
	cat <<SCRIPT
#!/bin/sh
exec "\$(dirname "\$0")/$prog" "\$@"
SCRIPT
	exit 0
fi
cat <<SCRIPT
#!/bin/sh
LD_PRELOAD="$preload\${LD_PRELOAD:+ \$LD_PRELOAD}"
VRANGE_TEST_PLUGIN="$plugin"
export LD_PRELOAD VRANGE_TEST_PLUGIN
exec "\$(dirname "\$0")/$prog" "\$@"
SCRIPT
