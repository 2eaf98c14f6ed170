// SPDX-License-Identifier: Apache-2.0
// Files and directories: openat, close_fd, statx, fsync, fallocate, ftruncate, unlinkat,
// renameat, mkdirat, symlinkat, linkat, splice and tee; the constants tables luring.o,
// luring.at, luring.falloc, luring.rename and luring.splice_f; luring.close_fd_now.
//
// Paths are relative to the current directory (AT_FDCWD) and are copied into the slot's
// buffer, which lives until the final completion (so SQPOLL may read them late). New
// descriptors are close-on-exec, and closed by the module if no callback receives them.
// On a kernel without the op (the probe says so), unlinkat, renameat (5.11), mkdirat,
// symlinkat, linkat (5.15) and ftruncate (6.9) are done synchronously when queued, as
// bind and listen are (OpDesc::sync): the callback still runs from do_cqes.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include <climits>
#include <cstdio>
#include <cstring>

#include "module.hpp"
#include "prep.hpp"
#include "sys.hpp"

namespace luring::lua {

namespace {

// ---- Constants --------------------------------------------------------------------------

const Constant kOpenFlags[] = {
    {"RDONLY", O_RDONLY},
    {"WRONLY", O_WRONLY},
    {"RDWR", O_RDWR},
    {"CREAT", O_CREAT},
    {"EXCL", O_EXCL},
    {"TRUNC", O_TRUNC},
    {"APPEND", O_APPEND},
    {"NONBLOCK", O_NONBLOCK},
    {"DIRECTORY", O_DIRECTORY},
    {"NOFOLLOW", O_NOFOLLOW},
    {"DIRECT", O_DIRECT},
    {"SYNC", O_SYNC},
    {"DSYNC", O_DSYNC},
    {"TMPFILE", O_TMPFILE},
    {"PATH", O_PATH},
    {"NOATIME", O_NOATIME},
    {nullptr, 0},
};

const Constant kAtFlags[] = {
    {"SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW}, {"SYMLINK_FOLLOW", AT_SYMLINK_FOLLOW},
    {"NO_AUTOMOUNT", AT_NO_AUTOMOUNT},         {"STATX_FORCE_SYNC", AT_STATX_FORCE_SYNC},
    {"STATX_DONT_SYNC", AT_STATX_DONT_SYNC},   {nullptr, 0},
};

const Constant kFallocFlags[] = {
    {"KEEP_SIZE", FALLOC_FL_KEEP_SIZE},
    {"PUNCH_HOLE", FALLOC_FL_PUNCH_HOLE},
    {"ZERO_RANGE", FALLOC_FL_ZERO_RANGE},
    {"COLLAPSE_RANGE", FALLOC_FL_COLLAPSE_RANGE},
    {"INSERT_RANGE", FALLOC_FL_INSERT_RANGE},
    {"UNSHARE_RANGE", FALLOC_FL_UNSHARE_RANGE},
    {nullptr, 0},
};

const Constant kRenameFlags[] = {
    {"NOREPLACE", RENAME_NOREPLACE},
    {"EXCHANGE", RENAME_EXCHANGE},
    {"WHITEOUT", RENAME_WHITEOUT},
    {nullptr, 0},
};

const Constant kSpliceFlags[] = {
    {"MOVE", SPLICE_F_MOVE},
    {"NONBLOCK", SPLICE_F_NONBLOCK},
    {"MORE", SPLICE_F_MORE},
    {"GIFT", SPLICE_F_GIFT},
    {nullptr, 0},
};

// The bits of a constants list, for checking that flags hold nothing else.
constexpr lua_Integer bits_of(const Constant* list) {
    lua_Integer all = 0;
    for (const Constant* c = list; c->name != nullptr; ++c) all |= c->value;
    return all;
}

// Open flags an integer may hold: luring.o's, plus what the kernel adds or ignores anyway.
constexpr lua_Integer kOpenFlagsKnown = bits_of(kOpenFlags) | O_CLOEXEC | O_LARGEFILE | O_NOCTTY;
constexpr lua_Integer kStatxFlags =
    AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC;
constexpr lua_Integer kSpliceKnown = bits_of(kSpliceFlags);

// ---- Argument helpers -------------------------------------------------------------------

// Optional flags at `arg` (nil: 0) holding only bits of `allowed`; otherwise raises `what`.
int check_mask(lua_State* L, int arg, lua_Integer allowed, const char* what) {
    lua_Integer f = check_int_range(L, arg, 0, 0, INT_MAX, what);
    if ((f & ~allowed) != 0) luaL_argerror(L, arg, what);
    return static_cast<int>(f);
}

// An optional boolean (nil: false); anything else raises.
bool check_opt_bool(lua_State* L, int arg) {
    if (lua_isnoneornil(L, arg)) return false;
    luaL_checktype(L, arg, LUA_TBOOLEAN);
    return lua_toboolean(L, arg) != 0;
}

// A non-negative byte count or offset (file sizes: off_t).
std::int64_t check_length(lua_State* L, int arg, lua_Integer min, const char* what) {
    lua_Integer n = luaL_checkinteger(L, arg);
    luaL_argcheck(L, n >= min, arg, what);
    return n;
}

// io.open's mode strings (liolib.c l_checkmode: [rwa]+?b*), as fopen(3) opens them.
// Returns -1 for anything else.
int open_mode_flags(const char* mode) {
    int flags = 0;
    switch (*mode++) {
        case 'r':
            flags = O_RDONLY;
            break;
        case 'w':
            flags = O_WRONLY | O_CREAT | O_TRUNC;
            break;
        case 'a':
            flags = O_WRONLY | O_CREAT | O_APPEND;
            break;
        default:
            return -1;
    }
    if (*mode == '+') {
        flags = (flags & ~O_WRONLY) | O_RDWR;
        ++mode;
    }
    while (*mode == 'b') ++mode;  // binary: means nothing on POSIX
    return *mode == '\0' ? flags : -1;
}

// A libc call's result as a CQE would carry it: the value, or -errno.
std::int32_t sync_result(int ret) { return ret >= 0 ? ret : -errno; }

// Both paths of a two-path op go in the slot's buffer, one after the other.
void prep_two_paths(const OpArgs& a, char* buf, const char*& first, const char*& second) {
    first = copy_path(buf, 0, a.str, a.str_len);
    second = copy_path(buf, static_cast<std::uint32_t>(a.str_len + 1), a.str2, a.str2_len);
}

// ---- openat(path, flags_or_mode, perm, cb) -> cb(cqe, fd)   (5.6)
void check_openat(lua_State* L, int base, OpArgs& a) {
    check_path(L, base, a);
    int flags = O_RDONLY;
    switch (lua_type(L, base + 1)) {
        case LUA_TNONE:
        case LUA_TNIL:
            break;
        case LUA_TSTRING:
            flags = open_mode_flags(lua_tostring(L, base + 1));
            luaL_argcheck(L, flags >= 0, base + 1,
                          "mode must be 'r', 'w', 'a', 'r+', 'w+' or 'a+' (and 'b')");
            break;
        case LUA_TNUMBER:
            flags = check_mask(L, base + 1, kOpenFlagsKnown,
                               "flags must be luring.o.* values combined with |");
            break;
        default:
            luaL_typeerror(L, base + 1, "mode string or luring.o flags");
    }
    a.n[0] = flags | O_CLOEXEC;
    a.n[1] = check_int_range(L, base + 2, 0666, 0, 07777, "permissions must be 0 to 0o7777");
}
void prep_openat(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_openat(sqe, AT_FDCWD, copy_path(buf, 0, a.str, a.str_len), static_cast<int>(a.n[0]),
                       static_cast<std::uint32_t>(a.n[1]));
}

// ---- close_fd(fd, cb) -> cb(cqe, res)   (5.6)
void check_close_fd(lua_State* L, int base, OpArgs& a) { a.fd = check_fd(L, base); }
void prep_close_fd(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_close(sqe, a.fd);
}

// ---- statx(path_or_fd, flags, cb) -> cb(cqe, res, st)   (5.6; st nil on failure)
// The buffer holds the struct statx, then the path ("" with AT_EMPTY_PATH for an fd).
constexpr std::uint32_t kStatxMask = STATX_BASIC_STATS | STATX_BTIME;

void check_statx(lua_State* L, int base, OpArgs& a) {
    a.buf = sizeof(struct statx);
    if (lua_type(L, base) == LUA_TNUMBER) {
        a.fd = check_fd(L, base);
        a.str = "";
        a.buf += 1;
    } else {
        luaL_argexpected(L, lua_type(L, base) == LUA_TSTRING, base, "path or file descriptor");
        check_path(L, base, a);
        a.fd = AT_FDCWD;
    }
    a.n[0] = check_mask(L, base + 1, kStatxFlags,
                        "flags may be luring.at.SYMLINK_NOFOLLOW, NO_AUTOMOUNT, STATX_*_SYNC");
    if (a.fd != AT_FDCWD) a.n[0] |= AT_EMPTY_PATH;
}
void prep_statx(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    auto* st = reinterpret_cast<struct statx*>(buf);
    const char* path = copy_path(buf, sizeof(struct statx), a.str, a.str_len);
    uring::prep_statx(sqe, a.fd, path, static_cast<int>(a.n[0]), kStatxMask, st);
}

const char* file_type(std::uint32_t mode) {
    switch (mode & S_IFMT) {
        case S_IFREG:
            return "file";
        case S_IFDIR:
            return "directory";
        case S_IFLNK:
            return "link";
        case S_IFIFO:
            return "fifo";
        case S_IFSOCK:
            return "socket";
        case S_IFCHR:
            return "char";
        case S_IFBLK:
            return "block";
        default:
            return "unknown";
    }
}

double seconds(const statx_timestamp& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

void set_field(lua_State* L, const char* key, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}
void set_field(lua_State* L, const char* key, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

int push_statx(lua_State* L, std::int32_t res, const Slot& s) {
    if (res < 0) {
        lua_pushnil(L);
        return 1;
    }
    // Copied before the first allocation: a GC step may run a finalizer that queues
    // requests and moves the slot table (never this slot's buffer, still ours).
    struct statx st;
    std::memcpy(&st, s.buf, sizeof st);
    lua_createtable(L, 0, 16);
    set_field(L, "size", static_cast<lua_Integer>(st.stx_size));
    set_field(L, "mode", lua_Integer{st.stx_mode});
    lua_pushstring(L, file_type(st.stx_mode));
    lua_setfield(L, -2, "type");
    set_field(L, "uid", lua_Integer{st.stx_uid});
    set_field(L, "gid", lua_Integer{st.stx_gid});
    set_field(L, "nlink", lua_Integer{st.stx_nlink});
    set_field(L, "ino", static_cast<lua_Integer>(st.stx_ino));  // u64: above 2^63 wraps negative
    set_field(L, "dev", static_cast<lua_Integer>(makedev(st.stx_dev_major, st.stx_dev_minor)));
    set_field(L, "rdev", static_cast<lua_Integer>(makedev(st.stx_rdev_major, st.stx_rdev_minor)));
    set_field(L, "atime", seconds(st.stx_atime));
    set_field(L, "mtime", seconds(st.stx_mtime));
    set_field(L, "ctime", seconds(st.stx_ctime));
    if ((st.stx_mask & STATX_BTIME) != 0) set_field(L, "btime", seconds(st.stx_btime));
    set_field(L, "blksize", lua_Integer{st.stx_blksize});
    set_field(L, "blocks", static_cast<lua_Integer>(st.stx_blocks));
    return 1;
}

// ---- fsync(fd, datasync, cb) -> cb(cqe, res)   (5.1)
void check_fsync(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_opt_bool(L, base + 1) ? uring::kFsyncDatasync : 0;
}
void prep_fsync(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_fsync(sqe, a.fd, static_cast<std::uint32_t>(a.n[0]));
}

// ---- fallocate(fd, mode, offset, len, cb) -> cb(cqe, res)   (5.6)
void check_fallocate(lua_State* L, int base, OpArgs& a) {
    check_file(L, base, a);
    a.n[0] = check_mask(L, base + 1, bits_of(kFallocFlags),
                        "mode must be 0 or luring.falloc.* values combined with |");
    a.n[1] = check_length(L, base + 2, 0, "offset must be >= 0");
    a.n[2] = check_length(L, base + 3, 1, "length must be > 0");
}
void prep_fallocate(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_fallocate(sqe, a.fd, static_cast<int>(a.n[0]), static_cast<std::uint64_t>(a.n[1]),
                          static_cast<std::uint64_t>(a.n[2]));
}

// ---- ftruncate(fd, len, cb) -> cb(cqe, res)   (6.9)
void check_ftruncate(lua_State* L, int base, OpArgs& a) {
    a.fd = check_fd(L, base);
    a.n[0] = check_length(L, base + 1, 0, "length must be >= 0");
}
void prep_ftruncate(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_ftruncate(sqe, a.fd, static_cast<std::uint64_t>(a.n[0]));
}
std::int32_t sync_ftruncate(const OpArgs& a, char*) {
    return sync_result(::ftruncate(a.fd, static_cast<off_t>(a.n[0])));
}

// ---- unlinkat(path, dir, cb) -> cb(cqe, res)   (5.11; dir true: rmdir)
void check_unlinkat(lua_State* L, int base, OpArgs& a) {
    check_path(L, base, a);
    a.n[0] = check_opt_bool(L, base + 1) ? AT_REMOVEDIR : 0;
}
void prep_unlinkat(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_unlinkat(sqe, AT_FDCWD, copy_path(buf, 0, a.str, a.str_len),
                         static_cast<int>(a.n[0]));
}
std::int32_t sync_unlinkat(const OpArgs& a, char* buf) {
    return sync_result(
        ::unlinkat(AT_FDCWD, copy_path(buf, 0, a.str, a.str_len), static_cast<int>(a.n[0])));
}

// ---- renameat(old, new, flags, cb) -> cb(cqe, res)   (5.11)
void check_renameat(lua_State* L, int base, OpArgs& a) {
    check_path(L, base, a);
    check_path(L, base + 1, a, true);
    a.n[0] = check_mask(L, base + 2, bits_of(kRenameFlags),
                        "flags may be luring.rename.NOREPLACE, EXCHANGE, WHITEOUT");
}
void prep_renameat(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    const char* from = nullptr;
    const char* to = nullptr;
    prep_two_paths(a, buf, from, to);
    uring::prep_renameat(sqe, AT_FDCWD, from, AT_FDCWD, to, static_cast<unsigned>(a.n[0]));
}
std::int32_t sync_renameat(const OpArgs& a, char* buf) {
    const char* from = nullptr;
    const char* to = nullptr;
    prep_two_paths(a, buf, from, to);
    // renameat2(2) (3.15): the op takes the same flags.
    return sync_result(
        ::renameat2(AT_FDCWD, from, AT_FDCWD, to, static_cast<unsigned>(a.n[0])));
}

// ---- mkdirat(path, mode, cb) -> cb(cqe, res)   (5.15)
void check_mkdirat(lua_State* L, int base, OpArgs& a) {
    check_path(L, base, a);
    a.n[0] = check_int_range(L, base + 1, 0777, 0, 07777, "mode must be 0 to 0o7777");
}
void prep_mkdirat(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    uring::prep_mkdirat(sqe, AT_FDCWD, copy_path(buf, 0, a.str, a.str_len),
                        static_cast<std::uint32_t>(a.n[0]));
}
std::int32_t sync_mkdirat(const OpArgs& a, char* buf) {
    return sync_result(::mkdirat(AT_FDCWD, copy_path(buf, 0, a.str, a.str_len),
                                 static_cast<mode_t>(a.n[0])));
}

// ---- symlinkat(target, linkpath, cb) -> cb(cqe, res)   (5.15)
void check_symlinkat(lua_State* L, int base, OpArgs& a) {
    check_path(L, base, a);
    check_path(L, base + 1, a, true);
}
void prep_symlinkat(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    const char* target = nullptr;
    const char* link = nullptr;
    prep_two_paths(a, buf, target, link);
    uring::prep_symlinkat(sqe, target, AT_FDCWD, link);
}
std::int32_t sync_symlinkat(const OpArgs& a, char* buf) {
    const char* target = nullptr;
    const char* link = nullptr;
    prep_two_paths(a, buf, target, link);
    return sync_result(::symlinkat(target, AT_FDCWD, link));
}

// ---- linkat(old, new, flags, cb) -> cb(cqe, res)   (5.15)
void check_linkat(lua_State* L, int base, OpArgs& a) {
    check_path(L, base, a);
    check_path(L, base + 1, a, true);
    a.n[0] = check_mask(L, base + 2, AT_SYMLINK_FOLLOW, "flags may be luring.at.SYMLINK_FOLLOW");
}
void prep_linkat(lua_State*, uring::Sqe& sqe, const OpArgs& a, char* buf) {
    const char* from = nullptr;
    const char* to = nullptr;
    prep_two_paths(a, buf, from, to);
    uring::prep_linkat(sqe, AT_FDCWD, from, AT_FDCWD, to, static_cast<int>(a.n[0]));
}
std::int32_t sync_linkat(const OpArgs& a, char* buf) {
    const char* from = nullptr;
    const char* to = nullptr;
    prep_two_paths(a, buf, from, to);
    return sync_result(::linkat(AT_FDCWD, from, AT_FDCWD, to, static_cast<int>(a.n[0])));
}

// ---- splice(fd_in, off_in, fd_out, off_out, nbytes, flags, cb) -> cb(cqe, res)   (5.7)
// An offset of -1 means none (a pipe) or the file position.
void check_splice(lua_State* L, int base, OpArgs& a) {
    a.fd = check_fd(L, base);
    a.n[0] = static_cast<std::int64_t>(check_offset(L, base + 1));
    a.fd2 = check_fd(L, base + 2);
    a.n[1] = static_cast<std::int64_t>(check_offset(L, base + 3));
    a.n[2] = check_size(L, base + 4);
    a.n[3] = check_mask(L, base + 5, kSpliceKnown,
                        "flags may be luring.splice_f.MOVE, NONBLOCK, MORE, GIFT");
}
void prep_splice(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_splice(sqe, a.fd, a.n[0], a.fd2, a.n[1], static_cast<std::uint32_t>(a.n[2]),
                       static_cast<std::uint32_t>(a.n[3]));
}

// ---- tee(fd_in, fd_out, nbytes, flags, cb) -> cb(cqe, res)   (5.8)
void check_tee(lua_State* L, int base, OpArgs& a) {
    a.fd = check_fd(L, base);
    a.fd2 = check_fd(L, base + 1);
    a.n[0] = check_size(L, base + 2);
    a.n[1] = check_mask(L, base + 3, kSpliceKnown,
                        "flags may be luring.splice_f.MOVE, NONBLOCK, MORE, GIFT");
}
void prep_tee(lua_State*, uring::Sqe& sqe, const OpArgs& a, char*) {
    uring::prep_tee(sqe, a.fd, a.fd2, static_cast<std::uint32_t>(a.n[0]),
                    static_cast<std::uint32_t>(a.n[1]));
}

// luring.close_fd_now(fd) -> true | nil, "close_fd_now: msg", errno. For descriptors no
// request owns (a close that cannot wait for the ring). On Linux the descriptor is gone
// even when close reports an error (EINTR, EIO): do not retry.
int close_fd_now(lua_State* L) {
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0, 1, "negative file descriptor");
    luaL_argcheck(L, fd <= INT_MAX, 1, "file descriptor out of range");
    const int rc = uring::sys::close(static_cast<int>(fd));
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "close_fd_now: %s", std::strerror(-rc));
    lua_pushinteger(L, -rc);
    return 3;
}

}  // namespace

extern const OpDesc kFsOps[] = {
    {"openat", uring::Op::openat, 3, op_flag::result_fd, check_openat, prep_openat, nullptr,
     nullptr},
    {"close_fd", uring::Op::close, 1, 0, check_close_fd, prep_close_fd, nullptr, nullptr},
    {"statx", uring::Op::statx, 2, 0, check_statx, prep_statx, push_statx, nullptr},
    {"fsync", uring::Op::fsync, 2, 0, check_fsync, prep_fsync, nullptr, nullptr},
    {"fallocate", uring::Op::fallocate, 4, 0, check_fallocate, prep_fallocate, nullptr, nullptr},
    {"ftruncate", uring::Op::ftruncate, 2, 0, check_ftruncate, prep_ftruncate, nullptr,
     sync_ftruncate},
    {"unlinkat", uring::Op::unlinkat, 2, 0, check_unlinkat, prep_unlinkat, nullptr,
     sync_unlinkat},
    {"renameat", uring::Op::renameat, 3, 0, check_renameat, prep_renameat, nullptr,
     sync_renameat},
    {"mkdirat", uring::Op::mkdirat, 2, 0, check_mkdirat, prep_mkdirat, nullptr, sync_mkdirat},
    {"symlinkat", uring::Op::symlinkat, 2, 0, check_symlinkat, prep_symlinkat, nullptr,
     sync_symlinkat},
    {"linkat", uring::Op::linkat, 3, 0, check_linkat, prep_linkat, nullptr, sync_linkat},
    {"splice", uring::Op::splice, 6, 0, check_splice, prep_splice, nullptr, nullptr},
    {"tee", uring::Op::tee, 4, 0, check_tee, prep_tee, nullptr, nullptr},
    {nullptr, uring::Op::nop, 0, 0, nullptr, nullptr, nullptr, nullptr},
};

void open_fs(lua_State* L) {
    set_constants(L, "o", kOpenFlags);
    set_constants(L, "at", kAtFlags);
    set_constants(L, "falloc", kFallocFlags);
    set_constants(L, "rename", kRenameFlags);
    // Not "splice": that is the op (luring.splice(ring, ...)). SPLICE_F_MOVE is splice_f.MOVE.
    set_constants(L, "splice_f", kSpliceFlags);
    lua_pushcfunction(L, close_fd_now);
    lua_setfield(L, -2, "close_fd_now");
}

}  // namespace luring::lua
