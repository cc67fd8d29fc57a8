#ifndef NODEMCU_CLUASHIM_H
#define NODEMCU_CLUASHIM_H
#include <stddef.h>
#endif
