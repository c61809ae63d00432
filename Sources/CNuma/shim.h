/* libnuma, imported as is (libnuma-dev, through pkg-config "numa"). */
#include <numa.h>
#include <numaif.h>
