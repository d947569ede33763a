/*
 * l4/sys/ipc.h: IPC error codes and l4_error(), as L4Re names them.
 *
 * There is no kernel IPC on Linux: an invocation that cannot reach its object
 * (empty slot, invalid index, a server that has gone away) reports one of
 * these codes, and l4_error() turns a message tag into the usual negative
 * result: 0 or a positive value on success, -L4_E* on failure, and
 * -(L4_EIPC_LO + code) for IPC failures.
 */
#ifndef L4_SYS_IPC_H__
#define L4_SYS_IPC_H__

#include <l4/sys/err.h>
#include <l4/sys/types.h>

enum l4_ipc_tcr_error_t
{
  L4_IPC_ERROR_MASK   = 0x1F,
  L4_IPC_SND_ERR_MASK = 0x01,
  L4_IPC_ENOT_EXISTENT = 0x04,
  L4_IPC_RETIMEOUT    = 0x03,
  L4_IPC_SETIMEOUT    = 0x02,
  L4_IPC_RECANCELED   = 0x07,
  L4_IPC_SECANCELED   = 0x06,
  L4_IPC_REMAPFAILED  = 0x11,
  L4_IPC_SEMAPFAILED  = 0x10,
  L4_IPC_RESNDPFTO    = 0x0B,
  L4_IPC_SESNDPFTO    = 0x0A,
  L4_IPC_RERCVPFTO    = 0x0D,
  L4_IPC_SERCVPFTO    = 0x0C,
  L4_IPC_REABORTED    = 0x0F,
  L4_IPC_SEABORTED    = 0x0E,
  L4_IPC_REMSGCUT     = 0x09,
  L4_IPC_SEMSGCUT     = 0x08,
};

/* The result of an invocation: the label for a successful IPC, the
 * negative IPC error code for a failed one. */
L4_INLINE long l4_error(l4_msgtag_t tag) L4_NOTHROW
{ return l4_msgtag_label(tag); }

#endif /* L4_SYS_IPC_H__ */
