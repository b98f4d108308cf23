/*
 * faultline audit, the room's door: discovery (discover.h, the contract
 * with the battery) and what is built on it.
 */
#ifndef FL_AUDIT_H
#define FL_AUDIT_H

#include "discover.h"

#endif
