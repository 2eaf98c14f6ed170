-- SPDX-License-Identifier: Apache-2.0
-- Files and directories against the real kernel: openat (io.open's modes), close_fd,
-- statx (fields compared with stat(1)), fsync, fallocate, ftruncate, unlinkat, renameat,
-- mkdirat, symlinkat, linkat, splice and tee; close_fd_now; constants; argument errors.
-- A case whose op the kernel lacks (asked of luring.probe()) skips, saying which.
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local cases = {}
local ring

-- The kernel's op names luring.probe() reports as supported.
local supported = {}
do
  local r = luring.probe()
  for _, op in ipairs(r.ops or {}) do
    if op.supported then supported[op.name] = true end
  end
end

-- A case needing the kernel ops `ops`: skips without them, gets a fresh ring, and must
-- leave as many descriptors open as it found.
local function case(name, ops, fn)
  cases[#cases + 1] = { name, function()
    for _, op in ipairs(ops) do
      if not supported[op] then helper.skip("the kernel lacks IORING_OP_" .. op:upper()) end
    end
    local base = helper.fd_count()
    ring = luring.queue_init(16, 0)
    fn()
    ring:close()
    collectgarbage()
    local now = helper.fd_count()
    assert(now == base, ("descriptors: %d before, %d after"):format(base, now))
  end }
end

-- Runs one request made by `start(cb)` and returns its callback's arguments.
local function one(start)
  local got
  assert(start(function(...) got = table.pack(...) end), "queue full")
  helper.run_until(ring, function() return got ~= nil end)
  return table.unpack(got, 2, got.n)  -- without the cqe
end

-- errno values luring.errno lacks, found by their messages (they differ between
-- architectures).
local function errno_named(message)
  for n = 1, 200 do
    if luring.strerror(n) == message then return n end
  end
  error("no errno says " .. message)
end
local E = luring.errno
local ENOTEMPTY = errno_named("Directory not empty")
local ENOTDIR = errno_named("Not a directory")
local ESPIPE = errno_named("Illegal seek")
assert(E.ENOENT == errno_named("No such file or directory"))

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n$", ""))
end
local q = helper.shell_quote
local function exists(path) return os.execute("test -e " .. q(path) .. " -o -L " .. q(path)) end
local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
local umask = tonumber(sh("sh -c umask"), 8)
local function perm_of(path) return tonumber(sh("stat -c %a " .. q(path)), 8) end

-- A fresh path that does not exist yet (removed at the end).
local function fresh()
  local p = helper.tmpname()
  os.remove(p)
  return p
end
-- A fresh directory (removed with its contents at the end).
local dirs = {}
local function fresh_dir()
  local p = fresh()
  assert(os.execute("mkdir " .. q(p)))
  dirs[#dirs + 1] = p
  return p
end
local function cleanup_dirs()
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
  dirs = {}
end

-- Whether fd is close-on-exec, from /proc/self/fdinfo (flags in octal, O_CLOEXEC 02000000).
local function cloexec(fd)
  local f = assert(io.open("/proc/self/fdinfo/" .. fd))
  local flags = f:read("a"):match("flags:%s*(%d+)")
  f:close()
  return (tonumber(flags, 8) & tonumber("2000000", 8)) ~= 0
end

local function close(fd) assert(luring.close_fd_now(fd)) end

-- ---- openat -------------------------------------------------------------------------------

-- What a mode does to an existing file holding "hello", as io.open shows it: whether it
-- reads (and what), whether it writes, and the contents after writing "XY" at the start.
local function observe_io(path, mode)
  spit(path, "hello")
  local f = assert(io.open(path, mode))
  local data = f:read("a")
  f:seek("set", 0)
  local wrote = f:write("XY") ~= nil and f:flush() == true
  f:close()
  return { read = data, wrote = wrote, after = helper.slurp(path) }
end
local function observe_luring(path, mode)
  spit(path, "hello")
  local fd = one(function(cb) return ring:openat(path, mode, nil, cb) end)
  assert(fd >= 0, fd)
  assert(cloexec(fd), "openat fd is not close-on-exec")
  local n, data = one(function(cb) return ring:read(fd, 100, 0, cb) end)
  assert(n >= 0 or n == -E.EBADF, n)
  local w = one(function(cb) return ring:write(fd, "XY", 0, cb) end)
  assert(w == 2 or w == -E.EBADF, w)
  close(fd)
  return { read = n >= 0 and data or nil, wrote = w == 2, after = helper.slurp(path) }
end

case("openat_modes", { "openat" }, function()
  -- fopen(3): r read; w write, create, truncate; a write, create, append; + adds the
  -- other direction; b means nothing.
  local want = {
    r = { read = "hello", wrote = false, after = "hello" },
    w = { read = nil, wrote = true, after = "XY" },
    a = { read = nil, wrote = true, after = "helloXY" },
    ["r+"] = { read = "hello", wrote = true, after = "XYllo" },
    ["w+"] = { read = "", wrote = true, after = "XY" },
    ["a+"] = { read = "hello", wrote = true, after = "helloXY" },
  }
  local path = helper.tmpname()
  for _, base in ipairs({ "r", "w", "a", "r+", "w+", "a+" }) do
    for _, mode in ipairs({ base, base .. "b", base .. "bb" }) do
      local io_saw = observe_io(path, mode)
      local got = observe_luring(path, mode)
      for _, k in ipairs({ "read", "wrote", "after" }) do
        assert(io_saw[k] == want[base][k], ("io.open %s %s: %s"):format(mode, k, io_saw[k]))
        assert(got[k] == want[base][k],
               ("openat %s %s: %s, io.open says %s"):format(mode, k, tostring(got[k]),
                                                           tostring(want[base][k])))
      end
    end
  end
  -- A missing file: r and r+ fail with ENOENT as io.open does; the others create it,
  -- empty, with 0666 less the umask.
  for _, mode in ipairs({ "r", "w", "a", "r+", "w+", "a+" }) do
    local p = fresh()
    local f, _, code = io.open(p, mode)
    if f then f:close() end
    local p2 = fresh()
    local fd = one(function(cb) return ring:openat(p2, mode, nil, cb) end)
    if mode:sub(1, 1) == "r" then
      assert(not f and code == E.ENOENT and fd == -E.ENOENT, mode .. ": " .. fd)
    else
      assert(f and fd >= 0, mode .. ": " .. fd)
      close(fd)
      assert(helper.slurp(p2) == "")
      assert(perm_of(p2) == (tonumber("666", 8) & ~umask), mode)
    end
  end
  -- The default mode is "r".
  spit(path, "default")
  local fd = one(function(cb) return ring:openat(path, nil, nil, cb) end)
  local _, data = one(function(cb) return ring:read(fd, 100, 0, cb) end)
  assert(data == "default")
  assert(one(function(cb) return ring:write(fd, "x", 0, cb) end) == -E.EBADF)
  close(fd)
  -- The same modes are invalid for both (io.open raises, and so does openat).
  for _, mode in ipairs({ "", "x", "rw", "+", "r++", "rb+", "br", "w+x", "ab+", "R" }) do
    local io_ok = pcall(io.open, path, mode)
    local ok, err = pcall(ring.openat, ring, path, mode, nil)
    assert(not io_ok and not ok, mode)
    assert(err:find("mode must be 'r', 'w', 'a', 'r+', 'w+' or 'a+'", 1, true), err)
  end
end)

case("openat_flags", { "openat" }, function()
  local o = luring.o
  local path = helper.tmpname()
  spit(path, "exists")
  -- EXCL on an existing file; a new one with its permissions (umask applies).
  local fd = one(function(cb) return ring:openat(path, o.WRONLY | o.CREAT | o.EXCL, nil, cb) end)
  assert(fd == -E.EEXIST, fd)
  local p = fresh()
  local rwxr_xr_x = tonumber("755", 8)
  fd = one(function(cb) return ring:openat(p, o.WRONLY | o.CREAT | o.EXCL, rwxr_xr_x, cb) end)
  assert(fd >= 0 and cloexec(fd))
  close(fd)
  assert(perm_of(p) == (tonumber("755", 8) & ~umask), perm_of(p))
  p = fresh()
  fd = one(function(cb) return ring:openat(p, "w", tonumber("600", 8), cb) end)
  close(fd)
  assert(perm_of(p) == tonumber("600", 8))
  -- TRUNC empties, APPEND appends, RDONLY (0) refuses writes.
  fd = one(function(cb) return ring:openat(path, o.RDWR | o.TRUNC, nil, cb) end)
  assert(fd >= 0)
  close(fd)
  assert(helper.slurp(path) == "")
  spit(path, "ab")
  fd = one(function(cb) return ring:openat(path, o.WRONLY | o.APPEND, nil, cb) end)
  assert(one(function(cb) return ring:write(fd, "c", 0, cb) end) == 1)
  close(fd)
  assert(helper.slurp(path) == "abc")
  fd = one(function(cb) return ring:openat(path, o.RDONLY, nil, cb) end)
  assert(fd >= 0 and cloexec(fd))
  assert(one(function(cb) return ring:write(fd, "c", 0, cb) end) == -E.EBADF)
  close(fd)
  -- DIRECTORY on a file; a directory opened with DIRECTORY; a missing path.
  assert(one(function(cb) return ring:openat(path, o.DIRECTORY, nil, cb) end) == -ENOTDIR)
  fd = one(function(cb) return ring:openat("/", o.DIRECTORY, nil, cb) end)
  assert(fd >= 0)
  close(fd)
  assert(one(function(cb) return ring:openat("/nonexistent/x", "r", nil, cb) end) == -E.ENOENT)
  -- Paths are relative to the current directory.
  local dir = fresh_dir()
  spit(dir .. "/rel", "relative")
  local script = helper.tmpname()
  spit(script, [[
    local l = require "luring"
    local r = l.queue_init(2)
    local fd
    r:openat("rel", "r", nil, function(_, res) fd = res end)
    r:submit_and_wait(1)
    r:do_cqes()
    io.write(fd >= 0 and "opened" or tostring(fd))
  ]])
  assert(sh("cd " .. q(dir) .. " && " .. helper.lua_command(script)) == "opened")
  cleanup_dirs()
end)

-- An openat nobody receives (no callback, or a ring closed before its completion was
-- handled) does not leak its descriptor.
case("openat_no_callback_no_leak", { "openat" }, function()
  local base = helper.fd_count()
  for _ = 1, 10 do assert(ring:openat("/dev/null", "r", nil)) end
  assert(ring:submit_and_wait(10) == 10)
  assert(ring:do_cqes() == 10)
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
  for _ = 1, 5 do
    local r = luring.queue_init(8, 0)
    assert(r:openat("/dev/null", "r", nil, function() error("never called") end))
    assert(r:submit_and_wait(1) == 1)
    r:close()
  end
  assert(helper.fd_count() == base, ("fds %d -> %d"):format(base, helper.fd_count()))
end)

-- ---- close_fd and close_fd_now ----------------------------------------------------------

case("close_fd", { "close" }, function()
  local base = helper.fd_count()
  local fd = luring.open_file(helper.tmpname(), "w")
  assert(fd >= 0 and helper.fd_count() == base + 1)
  assert(one(function(cb) return ring:close_fd(fd, cb) end) == 0)
  assert(helper.fd_count() == base)
  -- It is really closed: closing it again fails, both ways.
  assert(one(function(cb) return luring.close_fd(ring, fd, cb) end) == -E.EBADF)
  local ok, msg, code = luring.close_fd_now(fd)
  assert(ok == nil and msg == "close_fd_now: " .. luring.strerror(E.EBADF) and code == E.EBADF,
         msg)
  -- close_fd_now closes at once.
  fd = luring.open_file(helper.tmpname(), "w")
  assert(helper.fd_count() == base + 1)
  assert(luring.close_fd_now(fd) == true)
  assert(helper.fd_count() == base)
  -- A pipe's end.
  local r, w = testlib.pipe()
  assert(one(function(cb) return ring:close_fd(w, cb) end) == 0)
  assert(testlib.read(r, 10) == "")  -- end of file: the only writer is gone
  close(r)
  helper.raises("bad argument #1 to 'luring.close_fd_now' (negative file descriptor)",
                luring.close_fd_now, -1)
  helper.raises("bad argument #1 to 'luring.close_fd_now' (number expected, got string)",
                luring.close_fd_now, "x")
  helper.raises("bad argument #1 to 'luring.close_fd_now' (file descriptor out of range)",
                luring.close_fd_now, 2^40)
  helper.raises("bad argument #2 to 'luring.close_fd' (file descriptor out of range)",
                luring.close_fd, ring, -1)
end)

-- ---- statx ----------------------------------------------------------------------------------

-- stat(1)'s view of `path` in the statx table's terms.
local function stat_of(path, follow)
  local out = sh("stat " .. (follow and "-L " or "") ..
                 "-c '%s %f %u %g %h %i %d %t %T %.9X %.9Y %.9Z %W %.9W %o %b' " .. q(path))
  local f = {}
  for w in out:gmatch("%S+") do f[#f + 1] = w end
  local major, minor = tonumber(f[8], 16), tonumber(f[9], 16)
  -- glibc's makedev
  local rdev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12) |
               ((major & ~0xfff) << 32)
  return {
    size = math.tointeger(tonumber(f[1])), mode = tonumber(f[2], 16),
    uid = math.tointeger(tonumber(f[3])), gid = math.tointeger(tonumber(f[4])),
    nlink = math.tointeger(tonumber(f[5])), ino = math.tointeger(tonumber(f[6])),
    dev = math.tointeger(tonumber(f[7])), rdev = rdev,
    atime = tonumber(f[10]), mtime = tonumber(f[11]), ctime = tonumber(f[12]),
    btime = (f[13] ~= "0" and f[13] ~= "-") and tonumber(f[14]) or nil,
    blksize = math.tointeger(tonumber(f[15])), blocks = math.tointeger(tonumber(f[16])),
  }
end

local function check_stat(st, want, what)
  for _, k in ipairs({ "size", "mode", "uid", "gid", "nlink", "ino", "dev", "rdev", "blksize",
                       "blocks" }) do
    assert(math.type(st[k]) == "integer" and st[k] == want[k],
           ("%s: %s is %s, stat says %s"):format(what, k, tostring(st[k]), tostring(want[k])))
  end
  for _, k in ipairs({ "atime", "mtime", "ctime", "btime" }) do
    if want[k] == nil then
      assert(st[k] == nil, what .. ": " .. k .. " should be nil")
    else
      assert(math.type(st[k]) == "float" and math.abs(st[k] - want[k]) < 1e-6,
             ("%s: %s is %s, stat says %s"):format(what, k, tostring(st[k]), tostring(want[k])))
    end
  end
end

case("statx", { "statx" }, function()
  local path = helper.tmpname()
  spit(path, string.rep("s", 12345))
  local res, st = one(function(cb) return ring:statx(path, nil, cb) end)
  assert(res == 0 and type(st) == "table", res)
  assert(st.type == "file" and st.size == 12345)
  assert(st.mode & 0xf000 == 0x8000)  -- S_IFREG with the permission bits
  assert(st.mode & 0xfff == perm_of(path))
  check_stat(st, stat_of(path), "file")
  -- A directory, a character device (rdev), the root.
  local dir = fresh_dir()
  res, st = one(function(cb) return ring:statx(dir, nil, cb) end)
  assert(res == 0 and st.type == "directory")
  check_stat(st, stat_of(dir), "directory")
  res, st = one(function(cb) return ring:statx("/dev/null", nil, cb) end)
  assert(res == 0 and st.type == "char" and st.rdev ~= 0)
  check_stat(st, stat_of("/dev/null"), "/dev/null")
  -- btime is nil where the filesystem keeps none (procfs), as stat's %W says.
  res, st = one(function(cb) return ring:statx("/proc", nil, cb) end)
  assert(res == 0 and st.type == "directory")
  assert((st.btime == nil) == (stat_of("/proc").btime == nil), tostring(st.btime))
  -- A symlink: followed by default, itself with SYMLINK_NOFOLLOW.
  local link = dir .. "/link"
  assert(os.execute("ln -s " .. q(path) .. " " .. q(link)))
  res, st = one(function(cb) return ring:statx(link, nil, cb) end)
  assert(res == 0 and st.type == "file" and st.size == 12345)
  res, st = one(function(cb) return ring:statx(link, luring.at.SYMLINK_NOFOLLOW, cb) end)
  assert(res == 0 and st.type == "link" and st.size == #path)
  check_stat(st, stat_of(link), "symlink")
  -- A fifo and a socket.
  local fifo = dir .. "/fifo"
  assert(os.execute("mkfifo " .. q(fifo)))
  res, st = one(function(cb) return ring:statx(fifo, nil, cb) end)
  assert(res == 0 and st.type == "fifo")
  local ok_unix, unix = pcall(require, "socket.unix")
  if ok_unix then
    local sock = dir .. "/sock"
    local u = assert(unix())
    assert(u:bind(sock))
    res, st = one(function(cb) return ring:statx(sock, nil, cb) end)
    assert(res == 0 and st.type == "socket")
    u:close()
  end
  -- An integer is a descriptor (fstat).
  local fd = luring.open_file(path, "r")
  res, st = one(function(cb) return ring:statx(fd, nil, cb) end)
  assert(res == 0 and st.type == "file")
  check_stat(st, stat_of(path), "fd")
  close(fd)
  local r, w = testlib.pipe()
  res, st = one(function(cb) return ring:statx(r, nil, cb) end)
  assert(res == 0 and st.type == "fifo")
  close(r)
  close(w)
  -- Failures: res and no table.
  -- (The slot buffers are reused: a failure after a success hands out nothing stale.)
  res, st = one(function(cb) return ring:statx("/nonexistent/x", nil, cb) end)
  assert(res == -E.ENOENT and st == nil, res)
  res, st = one(function(cb) return ring:statx(1000000, nil, cb) end)
  assert(res == -E.EBADF and st == nil, res)
  res, st = one(function(cb) return ring:statx(path .. "/x", nil, cb) end)
  assert(res == -ENOTDIR and st == nil, res)
  cleanup_dirs()
end)

-- ---- fsync ---------------------------------------------------------------------------------

case("fsync", { "fsync" }, function()
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  assert(one(function(cb) return ring:write(fd, "durable", 0, cb) end) == 7)
  assert(one(function(cb) return ring:fsync(fd, false, cb) end) == 0)
  assert(one(function(cb) return ring:fsync(fd, nil, cb) end) == 0)
  assert(one(function(cb) return ring:fsync(fd, true, cb) end) == 0)
  assert(helper.slurp(path) == "durable")
  close(fd)
  -- The kernel's fsync ran: a pipe cannot be synced, a closed fd is EBADF.
  local r, w = testlib.pipe()
  assert(one(function(cb) return ring:fsync(w, false, cb) end) == -E.EINVAL)
  assert(one(function(cb) return ring:fsync(w, true, cb) end) == -E.EINVAL)
  close(r)
  close(w)
  assert(one(function(cb) return ring:fsync(fd, false, cb) end) == -E.EBADF)
  helper.raises("bad argument #3 to 'luring.fsync' (boolean expected, got number)",
                luring.fsync, ring, 0, 1)
end)

-- ---- ftruncate -----------------------------------------------------------------------------

case("ftruncate", { "ftruncate", "statx" }, function()
  local path = helper.tmpname()
  spit(path, "hello world")
  local fd = luring.open_file(path, "w")
  assert(one(function(cb) return ring:ftruncate(fd, 5, cb) end) == 0)
  assert(helper.slurp(path) == "hello")
  assert(one(function(cb) return ring:ftruncate(fd, 100, cb) end) == 0)
  assert(helper.slurp(path) == "hello" .. string.rep("\0", 95))
  local _, st = one(function(cb) return ring:statx(path, nil, cb) end)
  assert(st.size == 100)
  assert(one(function(cb) return ring:ftruncate(fd, 0, cb) end) == 0)
  assert(helper.slurp(path) == "")
  close(fd)
  -- Not open for writing; a pipe; a closed fd.
  fd = luring.open_file(path, "r")
  assert(one(function(cb) return ring:ftruncate(fd, 1, cb) end) == -E.EINVAL)
  close(fd)
  assert(one(function(cb) return ring:ftruncate(fd, 1, cb) end) == -E.EBADF)
  helper.raises("bad argument #3 to 'luring.ftruncate' (length must be >= 0)",
                luring.ftruncate, ring, 0, -1)
end)

-- ---- fallocate -----------------------------------------------------------------------------

case("fallocate", { "fallocate", "statx" }, function()
  local F = luring.falloc
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local function size() return select(2, one(function(cb) return ring:statx(fd, nil, cb) end)) end
  assert(one(function(cb) return ring:fallocate(fd, 0, 0, 8192, cb) end) == 0)
  local st = size()
  assert(st.size == 8192 and st.blocks >= 16, st.size)
  assert(helper.slurp(path) == string.rep("\0", 8192))
  assert(one(function(cb) return ring:fallocate(fd, nil, 0, 100, cb) end) == 0)  -- mode nil: 0
  -- KEEP_SIZE allocates past the end without growing the file.
  assert(one(function(cb) return ring:fallocate(fd, F.KEEP_SIZE, 8192, 65536, cb) end) == 0)
  local st2 = size()
  assert(st2.size == 8192 and st2.blocks >= st.blocks + 128, st2.blocks)
  -- PUNCH_HOLE (with KEEP_SIZE, as it must) and ZERO_RANGE zero data in place.
  assert(one(function(cb) return ring:write(fd, string.rep("d", 8192), 0, cb) end) == 8192)
  local res = one(function(cb)
    return ring:fallocate(fd, F.PUNCH_HOLE | F.KEEP_SIZE, 0, 4096, cb)
  end)
  assert(res == 0, res)
  assert(helper.slurp(path) == string.rep("\0", 4096) .. string.rep("d", 4096))
  assert(size().size == 8192)
  res = one(function(cb) return ring:fallocate(fd, F.ZERO_RANGE, 4096, 2048, cb) end)
  if res == -E.EOPNOTSUPP then
    print("note: this filesystem has no ZERO_RANGE")
  else
    assert(res == 0, res)
    assert(helper.slurp(path) == string.rep("\0", 6144) .. string.rep("d", 2048))
  end
  -- PUNCH_HOLE without KEEP_SIZE is refused by the kernel; a read-only fd too.
  res = one(function(cb) return ring:fallocate(fd, F.PUNCH_HOLE, 0, 4096, cb) end)
  assert(res == -E.EOPNOTSUPP, res)
  close(fd)
  fd = luring.open_file(path, "r")
  assert(one(function(cb) return ring:fallocate(fd, 0, 0, 4096, cb) end) == -E.EBADF)
  close(fd)
  helper.raises("bad argument #5 to 'luring.fallocate' (length must be > 0)",
                luring.fallocate, ring, 0, 0, 0, 0)
  helper.raises("bad argument #4 to 'luring.fallocate' (offset must be >= 0)",
                luring.fallocate, ring, 0, 0, -1, 10)
  helper.raises("bad argument #3 to 'luring.fallocate' (mode must be 0 or luring.falloc",
                luring.fallocate, ring, 0, 0x100, 0, 10)
end)

-- ---- unlinkat, renameat, mkdirat -------------------------------------------------------------

case("unlinkat", { "unlinkat" }, function()
  local dir = fresh_dir()
  local file = dir .. "/f"
  spit(file, "x")
  assert(one(function(cb) return ring:unlinkat(file, nil, cb) end) == 0)
  assert(not exists(file))
  assert(one(function(cb) return ring:unlinkat(file, false, cb) end) == -E.ENOENT)
  -- Directories need dir = true; a full one is ENOTEMPTY; a file is not a directory.
  local sub = dir .. "/sub"
  assert(os.execute("mkdir " .. q(sub)))
  assert(one(function(cb) return ring:unlinkat(sub, false, cb) end) == -E.EISDIR)
  spit(sub .. "/inside", "x")
  assert(one(function(cb) return ring:unlinkat(sub, true, cb) end) == -ENOTEMPTY)
  assert(exists(sub .. "/inside"))
  assert(one(function(cb) return ring:unlinkat(sub .. "/inside", true, cb) end) == -ENOTDIR)
  assert(one(function(cb) return ring:unlinkat(sub .. "/inside", false, cb) end) == 0)
  assert(one(function(cb) return ring:unlinkat(sub, true, cb) end) == 0)
  assert(not exists(sub))
  -- A symlink is removed, not its target.
  spit(file, "target")
  assert(os.execute("ln -s " .. q(file) .. " " .. q(dir .. "/l")))
  assert(one(function(cb) return ring:unlinkat(dir .. "/l", false, cb) end) == 0)
  assert(not exists(dir .. "/l") and helper.slurp(file) == "target")
  helper.raises("bad argument #3 to 'luring.unlinkat' (boolean expected, got string)",
                luring.unlinkat, ring, file, "yes")
  cleanup_dirs()
end)

case("renameat", { "renameat" }, function()
  local R = luring.rename
  local dir = fresh_dir()
  local a, b, c = dir .. "/a", dir .. "/b", dir .. "/c"
  spit(a, "A")
  assert(one(function(cb) return ring:renameat(a, b, nil, cb) end) == 0)
  assert(not exists(a) and helper.slurp(b) == "A")
  assert(one(function(cb) return ring:renameat(a, c, 0, cb) end) == -E.ENOENT)
  -- Replacing by default; NOREPLACE refuses, changing nothing; EXCHANGE swaps.
  spit(c, "C")
  assert(one(function(cb) return ring:renameat(b, c, R.NOREPLACE, cb) end) == -E.EEXIST)
  assert(helper.slurp(b) == "A" and helper.slurp(c) == "C")
  assert(one(function(cb) return ring:renameat(b, c, R.EXCHANGE, cb) end) == 0)
  assert(helper.slurp(b) == "C" and helper.slurp(c) == "A")
  assert(one(function(cb) return ring:renameat(b, c, nil, cb) end) == 0)
  assert(not exists(b) and helper.slurp(c) == "C")
  assert(one(function(cb) return ring:renameat(c, a, R.EXCHANGE, cb) end) == -E.ENOENT)
  assert(one(function(cb) return ring:renameat(c, a, R.NOREPLACE | R.EXCHANGE, cb) end) ==
         -E.EINVAL)
  helper.raises("bad argument #4 to 'luring.renameat' (flags may be luring.rename.NOREPLACE",
                luring.renameat, ring, a, b, 0x10)
  helper.raises("bad argument #3 to 'luring.renameat' (path contains a NUL byte)",
                luring.renameat, ring, a, "b\0c")
  cleanup_dirs()
end)

case("mkdirat", { "mkdirat" }, function()
  local dir = fresh_dir()
  local d = dir .. "/d"
  assert(one(function(cb) return ring:mkdirat(d, nil, cb) end) == 0)
  assert(os.execute("test -d " .. q(d)))
  assert(perm_of(d) == (tonumber("777", 8) & ~umask), perm_of(d))
  assert(one(function(cb) return ring:mkdirat(d, nil, cb) end) == -E.EEXIST)
  local d2 = dir .. "/d2"
  assert(one(function(cb) return ring:mkdirat(d2, tonumber("700", 8), cb) end) == 0)
  assert(perm_of(d2) == tonumber("700", 8))
  assert(one(function(cb) return ring:mkdirat(dir .. "/no/such", nil, cb) end) == -E.ENOENT)
  helper.raises("bad argument #3 to 'luring.mkdirat' (mode must be 0 to 0o7777)",
                luring.mkdirat, ring, d, 0x10000)
  cleanup_dirs()
end)

-- ---- symlinkat, linkat ---------------------------------------------------------------------

case("symlinkat", { "symlinkat", "statx" }, function()
  local dir = fresh_dir()
  local link = dir .. "/l"
  -- The target is stored as given, not resolved, and need not exist.
  assert(one(function(cb) return ring:symlinkat("../no such target", link, cb) end) == 0)
  assert(sh("readlink " .. q(link)) == "../no such target")
  local res, st = one(function(cb) return ring:statx(link, luring.at.SYMLINK_NOFOLLOW, cb) end)
  assert(res == 0 and st.type == "link" and st.size == #"../no such target")
  assert(one(function(cb) return ring:symlinkat("x", link, cb) end) == -E.EEXIST)
  -- Followed, it reaches the file.
  spit(dir .. "/t", "through the link")
  assert(one(function(cb) return ring:symlinkat("t", dir .. "/l2", cb) end) == 0)
  assert(helper.slurp(dir .. "/l2") == "through the link")
  assert(one(function(cb) return ring:symlinkat("t", dir .. "/no/l", cb) end) == -E.ENOENT)
  cleanup_dirs()
end)

case("linkat", { "linkat", "statx" }, function()
  local dir = fresh_dir()
  local f, h = dir .. "/f", dir .. "/h"
  spit(f, "shared")
  assert(one(function(cb) return ring:linkat(f, h, nil, cb) end) == 0)
  local _, sf = one(function(cb) return ring:statx(f, nil, cb) end)
  local _, sh_ = one(function(cb) return ring:statx(h, nil, cb) end)
  assert(sf.ino == sh_.ino and sf.nlink == 2 and sh_.nlink == 2)
  spit(h, "changed")
  assert(helper.slurp(f) == "changed")
  assert(one(function(cb) return ring:linkat(f, h, 0, cb) end) == -E.EEXIST)
  assert(one(function(cb) return ring:linkat(dir .. "/none", dir .. "/x", 0, cb) end) ==
         -E.ENOENT)
  -- A symlink as the old path: linked itself, or its target with SYMLINK_FOLLOW.
  local s = dir .. "/s"
  assert(os.execute("ln -s f " .. q(s)))
  assert(one(function(cb) return ring:linkat(s, dir .. "/s2", nil, cb) end) == 0)
  local nofollow = luring.at.SYMLINK_NOFOLLOW
  local _, st = one(function(cb) return ring:statx(dir .. "/s2", nofollow, cb) end)
  assert(st.type == "link")
  assert(one(function(cb) return ring:linkat(s, dir .. "/s3", luring.at.SYMLINK_FOLLOW, cb) end)
         == 0)
  _, st = one(function(cb) return ring:statx(dir .. "/s3", luring.at.SYMLINK_NOFOLLOW, cb) end)
  assert(st.type == "file" and st.ino == sf.ino and st.nlink == 3)
  helper.raises("bad argument #4 to 'luring.linkat' (flags may be luring.at.SYMLINK_FOLLOW)",
                luring.linkat, ring, f, h, luring.at.SYMLINK_NOFOLLOW)
  cleanup_dirs()
end)

-- ---- splice, tee ---------------------------------------------------------------------------

case("splice", { "splice" }, function()
  local S = luring.splice_f
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local r, w = testlib.pipe()
  -- Pipe to file at an offset, file at an offset to pipe.
  assert(testlib.write(w, "hello splice") == 12)
  assert(one(function(cb) return ring:splice(r, -1, fd, 3, 100, 0, cb) end) == 12)
  assert(helper.slurp(path) == "\0\0\0hello splice")
  assert(one(function(cb) return ring:splice(fd, 9, w, -1, 6, S.MOVE, cb) end) == 6)
  assert(testlib.read(r, 100) == "splice")
  -- Offset -1 on the file: its position, which advances.
  assert(one(function(cb) return ring:splice(fd, -1, w, -1, 4, 0, cb) end) == 4)
  assert(one(function(cb) return luring.splice(ring, fd, -1, w, -1, 4, 0, cb) end) == 4)
  assert(testlib.read(r, 100) == "\0\0\0hello")
  -- An empty pipe with NONBLOCK; no pipe at all; an offset on a pipe.
  assert(one(function(cb) return ring:splice(r, -1, fd, 0, 10, S.NONBLOCK, cb) end) == -E.EAGAIN)
  local fd2 = luring.open_file(helper.tmpname(), "w+")
  assert(one(function(cb) return ring:splice(fd, 0, fd2, 0, 10, 0, cb) end) == -E.EINVAL)
  assert(testlib.write(w, "x") == 1)
  assert(one(function(cb) return ring:splice(r, 0, fd2, 0, 10, 0, cb) end) == -ESPIPE)
  -- The writer gone and the pipe empty: 0.
  assert(testlib.read(r, 10) == "x")
  close(w)
  assert(one(function(cb) return ring:splice(r, -1, fd2, 0, 10, 0, cb) end) == 0)
  close(r)
  close(fd)
  close(fd2)
  helper.raises("bad argument #7 to 'luring.splice' (flags may be luring.splice_f.MOVE",
                luring.splice, ring, 0, -1, 1, -1, 10, 1 << 31)
  helper.raises("bad argument #3 to 'luring.splice' (offset must be >= 0, or -1",
                luring.splice, ring, 0, -2, 1, -1, 10, 0)
end)

case("tee", { "tee" }, function()
  local S = luring.splice_f
  local r1, w1 = testlib.pipe()
  local r2, w2 = testlib.pipe()
  assert(testlib.write(w1, "tee data") == 8)
  assert(one(function(cb) return ring:tee(r1, w2, 100, 0, cb) end) == 8)
  assert(testlib.read(r2, 100) == "tee data")
  -- tee consumes nothing: the first pipe still holds it all; nbytes limits.
  assert(one(function(cb) return ring:tee(r1, w2, 3, 0, cb) end) == 3)
  assert(testlib.read(r2, 100) == "tee")
  assert(testlib.read(r1, 100) == "tee data")
  assert(one(function(cb) return ring:tee(r1, w2, 100, S.NONBLOCK, cb) end) == -E.EAGAIN)
  local fd = luring.open_file(helper.tmpname(), "w+")
  assert(one(function(cb) return ring:tee(fd, w2, 100, 0, cb) end) == -E.EINVAL)
  close(fd)
  close(w1)
  assert(one(function(cb) return ring:tee(r1, w2, 100, 0, cb) end) == 0)
  for _, x in ipairs({ r1, r2, w2 }) do close(x) end
  helper.raises("bad argument #5 to 'luring.tee' (flags may be luring.splice_f.MOVE",
                luring.tee, ring, 0, 1, 10, 0x100)
end)

-- ---- constants and argument errors ---------------------------------------------------------

case("constants", {}, function()
  assert(luring.o.RDONLY == 0 and luring.o.WRONLY == 1 and luring.o.RDWR == 2)
  for _, name in ipairs({ "RDONLY", "WRONLY", "RDWR", "CREAT", "EXCL", "TRUNC", "APPEND",
                          "NONBLOCK", "DIRECTORY", "NOFOLLOW", "DIRECT", "SYNC", "DSYNC",
                          "TMPFILE", "PATH", "NOATIME" }) do
    assert(math.type(luring.o[name]) == "integer", name)
  end
  assert(luring.at.SYMLINK_NOFOLLOW == 0x100 and luring.at.SYMLINK_FOLLOW == 0x400)
  assert(luring.falloc.KEEP_SIZE == 1 and luring.falloc.PUNCH_HOLE == 2 and
         luring.falloc.ZERO_RANGE == 0x10)
  assert(luring.rename.NOREPLACE == 1 and luring.rename.EXCHANGE == 2)
  assert(luring.splice_f.MOVE == 1 and luring.splice_f.NONBLOCK == 2 and
         luring.splice_f.MORE == 4)
  helper.raises("luring.o has no constant 'CREATE'", function() return luring.o.CREATE end)
  helper.raises("luring.at has no constant 'REMOVEDIR'", function() return luring.at.REMOVEDIR end)
  helper.raises("luring.splice_f has no constant 'F_MOVE'",
                function() return luring.splice_f.F_MOVE end)
  -- No constants table hides an op's module form (luring.splice is the op).
  for _, name in ipairs({ "openat", "close_fd", "statx", "fsync", "fallocate", "ftruncate",
                          "unlinkat", "renameat", "mkdirat", "symlinkat", "linkat", "splice",
                          "tee", "close_fd_now" }) do
    assert(type(luring[name]) == "function", name)
  end
end)

case("argument_errors", {}, function()
  local p = helper.tmpname()
  local function bad(n, fn_name, msg, ...)
    helper.raises(("bad argument #%d to 'luring.%s' (%s"):format(n, fn_name, msg),
                  luring[fn_name], ring, ...)
  end
  bad(2, "openat", "string expected, got no value")
  bad(2, "openat", "path contains a NUL byte", "a\0b")
  bad(2, "openat", "path is longer than PATH_MAX", string.rep("a", 5000))
  bad(3, "openat", "mode must be 'r', 'w', 'a', 'r+', 'w+' or 'a+'", p, "rw")
  bad(3, "openat", "flags must be luring.o.* values", p, 1 << 30)
  bad(3, "openat", "flags must be luring.o.* values", p, -1)
  bad(3, "openat", "mode string or luring.o flags expected, got table", p, {})
  bad(4, "openat", "permissions must be 0 to 0o7777", p, "w", 0x1000)
  bad(5, "openat", "function expected, got number", p, "r", nil, 1)
  bad(2, "statx", "path or file descriptor expected, got table", {})
  bad(2, "statx", "file descriptor out of range", -1)
  bad(3, "statx", "flags may be luring.at.SYMLINK_NOFOLLOW", p, luring.at.SYMLINK_FOLLOW)
  bad(2, "fsync", "number expected, got string", "x")
  bad(3, "ftruncate", "number expected, got no value", 0)
  bad(2, "unlinkat", "string expected, got table", {})
  bad(3, "renameat", "string expected, got no value", p)
  bad(3, "symlinkat", "string expected, got no value", p)
  bad(3, "linkat", "string expected, got no value", p)
  bad(6, "splice", "number expected, got no value", 0, -1, 1, -1)
  bad(6, "splice", "size must be between 0 and 2147479552", 0, -1, 1, -1, -1)
  bad(4, "tee", "size must be between 0 and 2147479552", 0, 1, 2^31)
  -- The method form names the method and counts from its first argument.
  local ok, err = pcall(function() return ring:openat(p, "rw") end)
  assert(not ok and err:find("bad argument #2 to 'openat' (mode must be", 1, true), err)
  ok, err = pcall(function() return ring:mkdirat(p, -1) end)
  assert(not ok and err:find("bad argument #2 to 'mkdirat' (mode must be 0 to 0o7777)", 1, true),
         err)
  -- A closed ring is refused before the arguments are looked at.
  local r = luring.queue_init(2, 0)
  r:close()
  helper.raises("bad argument #1 to 'luring.openat'", luring.openat, r, p, "r", nil)
  -- Nothing was queued by any of these.
  assert(ring:in_flight() == 0)
end)

-- Requests of several kinds in flight together, each given its own results; their
-- buffers (paths, a statx struct) do not mix.
case("many_in_flight", { "openat", "statx", "mkdirat", "unlinkat" }, function()
  local dir = fresh_dir()
  local got = {}
  local n = 0
  for i = 1, 5 do
    local f = dir .. "/f" .. i
    spit(f, string.rep("x", i * 100))
    assert(ring:statx(f, nil, function(_, res, st) got["st" .. i] = { res, st }; n = n + 1 end))
    assert(ring:mkdirat(dir .. "/d" .. i, nil, function(_, res) got["d" .. i] = res; n = n + 1 end))
    assert(ring:openat(f, "r", nil, function(_, fd) got["o" .. i] = fd; n = n + 1 end))
  end
  assert(ring:unlinkat(dir .. "/none", nil, function(_, res) got.u = res; n = n + 1 end))
  helper.run_until(ring, function() return n == 16 end)
  for i = 1, 5 do
    assert(got["st" .. i][1] == 0 and got["st" .. i][2].size == i * 100)
    assert(got["d" .. i] == 0 and os.execute("test -d " .. q(dir .. "/d" .. i)))
    local fd = got["o" .. i]
    local _, data = one(function(cb) return ring:read(fd, 1000, 0, cb) end)
    assert(data == string.rep("x", i * 100))
    close(fd)
  end
  assert(got.u == -E.ENOENT)
  cleanup_dirs()
end)

helper.run_cases(cases)
