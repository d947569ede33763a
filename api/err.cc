#include <l4/sys/err.h>
#include <l4/sys/ipc.h>

extern "C" char const* l4sys_errtostr(long err) noexcept {
  if (err < 0) err = -err;
  switch (err) {
    case L4_EOK: return "OK";
    case L4_EPERM: return "Operation not permitted";
    case L4_ENOENT: return "No such entity";
    case L4_EIO: return "I/O error";
    case L4_ENXIO: return "No such device or address";
    case L4_E2BIG: return "Argument value too big";
    case L4_EAGAIN: return "Try again";
    case L4_ENOMEM: return "No memory";
    case L4_EACCESS: return "Permission denied";
    case L4_EFAULT: return "Invalid memory address";
    case L4_EBUSY: return "Object currently busy";
    case L4_EEXIST: return "Already exists";
    case L4_ENODEV: return "No such thing";
    case L4_EINVAL: return "Invalid argument";
    case L4_ENOSPC: return "No space left";
    case L4_ERANGE: return "Range error";
    case L4_ENAMETOOLONG: return "Name too long";
    case L4_ENOSYS: return "No sys";
    case L4_EBADPROTO: return "Unsupported protocol";
    case L4_EADDRNOTAVAIL: return "Address not available";
    case L4_ENOREPLY: return "No reply";
    case L4_EMSGTOOSHORT: return "Message too short";
    case L4_EMSGTOOLONG: return "Message too long";
    case L4_EMSGMISSARG: return "Message has invalid capability";
    default: break;
  }
  if (err >= L4_EIPC_LO && err <= L4_EIPC_HI) {
    switch (err - L4_EIPC_LO) {
      case L4_IPC_ENOT_EXISTENT: return "IPC error: non-existing object";
      case L4_IPC_SETIMEOUT: return "IPC error: send timeout";
      case L4_IPC_RETIMEOUT: return "IPC error: receive timeout";
      case L4_IPC_SECANCELED: return "IPC error: send canceled";
      case L4_IPC_RECANCELED: return "IPC error: receive canceled";
      case L4_IPC_SEABORTED: return "IPC error: send aborted";
      case L4_IPC_REABORTED: return "IPC error: receive aborted";
      default: return "IPC error";
    }
  }
  return "Unknown error";
}
