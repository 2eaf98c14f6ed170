-- SPDX-License-Identifier: Apache-2.0
-- Shared by the Lua tests. Meson sets LUA_CPATH to the fresh luring.so and LUA_PATH to
-- this folder and lua/. Exit code 77 means "skipped" to meson.
local luring = require "luring"

local helper = {}

-- Exits with meson's "skipped" status, saying why.
function helper.skip(why)
  io.stdout:write("SKIP: ", why, "\n")
  os.exit(77)
end

-- Counts calls: local cb, count = helper.counter(); ... assert(count() == n).
function helper.counter(fn)
  local n = 0
  return function(...)
    n = n + 1
    if fn then return fn(...) end
  end, function() return n end
end

-- expect(fn, n): wraps fn and checks at helper.check_expectations() that it ran n
-- times (luv lib/tap.lua's expect).
local expectations = {}
function helper.expect(fn, n, name)
  local e = { want = n or 1, got = 0, name = name or debug.traceback("", 2) }
  expectations[#expectations + 1] = e
  return function(...)
    e.got = e.got + 1
    if fn then return fn(...) end
  end
end
function helper.check_expectations()
  for _, e in ipairs(expectations) do
    assert(e.got == e.want, ("expected %d calls, got %d: %s"):format(e.want, e.got, e.name))
  end
  expectations = {}
end

-- Asserts that fn(...) raises an error whose message contains `pattern` (plain text).
function helper.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error matching '" .. pattern .. "'")
  err = tostring(err)
  assert(err:find(pattern, 1, true), ("error %q does not contain %q"):format(err, pattern))
  return err
end

-- A fresh temporary path, removed by helper.cleanup().
local temps = {}
function helper.tmpname()
  local p = os.tmpname()
  temps[#temps + 1] = p
  return p
end
function helper.cleanup()
  for _, p in ipairs(temps) do os.remove(p) end
  temps = {}
end

-- This process's pid, open descriptors and resident memory (KiB).
function helper.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end
function helper.fd_count()
  -- ls writes to a file while we wait: with io.popen our end of its pipe would be open
  -- while it reads the directory, and counted or not depending on timing.
  local out = os.tmpname()
  assert(os.execute("ls /proc/" .. helper.pid() .. "/fd > " .. out))
  local f = assert(io.open(out))
  local n = 0
  for _ in f:lines() do n = n + 1 end
  f:close()
  os.remove(out)
  return n
end
function helper.rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end

-- Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default), so
-- RSS says nothing about leaks there; tests compare RSS only when this is false.
helper.sanitized = (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) ~= nil

-- A FIFO opened twice: wfd is read/write (so opening never blocks), rfd read-only.
function helper.fifo()
  local path = helper.tmpname()
  os.remove(path)
  assert(os.execute("mkfifo " .. path))
  local wfd = luring.open_file(path, "w")
  local rfd = luring.open_file(path, "r")
  assert(wfd >= 0 and rfd >= 0)
  return rfd, wfd
end

-- A connected pair of loopback TCP sockets (LuaSocket), or skips if unavailable.
function helper.tcp_pair()
  local ok, socket = pcall(require, "socket")
  if not ok then helper.skip("LuaSocket (lua-socket) is not installed") end
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local client = assert(socket.connect("127.0.0.1", port))
  local peer = assert(server:accept())
  server:close()
  return client, peer
end

-- Submits, waits for and handles completions until `done()` or `timeout` seconds.
function helper.run_until(ring, done, timeout)
  local deadline = os.time() + (timeout or 5)
  while not done() do
    assert(os.time() <= deadline, "timed out")
    local ret = luring.submit_and_wait(ring, 1)
    assert(ret >= 0 or ret == -luring.errno.EINTR, luring.strerror(ret))
    luring.do_cqes(ring)
  end
end

return helper
