/* hwloc, imported as is (libhwloc-dev, through pkg-config "hwloc"). */
#include <hwloc.h>
