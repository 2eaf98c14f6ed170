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

-- The probe's setup flags: name (as "defer_taskrun") -> whether this kernel has it.
function helper.setup_flags_supported()
  local supported = {}
  for _, f in ipairs(luring.probe().setup_flags or {}) do supported[f.name] = f.supported end
  return supported
end

-- This process's pid, open descriptors and resident memory (KiB).
function helper.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end
function helper.fd_count()
  -- Opens /proc/self/fdinfo/N for every N below the descriptor table's size: no shell and
  -- no ls, so it works where the interpreter is the only program (tests/ship/minroot.sh).
  -- The descriptor each open takes is not counted: the kernel installs it only after
  -- the lookup, and it is closed before the next.
  local status = assert(io.open("/proc/self/status"))
  local size = assert(tonumber(status:read("a"):match("\nFDSize:%s*(%d+)")), "no FDSize")
  status:close()
  local n = 0
  for fd = 0, size - 1 do
    local f = io.open("/proc/self/fdinfo/" .. fd)
    if f then
      n = n + 1
      f:close()
    end
  end
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

-- A FIFO opened twice: wfd is read/write (so opening never blocks), rfd read-only; then
-- its path.
function helper.fifo()
  local path = helper.tmpname()
  os.remove(path)
  assert(os.execute("mkfifo " .. path))
  local wfd = luring.open_file(path, "w")
  local rfd = luring.open_file(path, "r")
  assert(wfd >= 0 and rfd >= 0)
  return rfd, wfd, path
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

-- Single-quotes `s` for sh.
function helper.shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The shell command that runs `script` (with the arguments `...`) in a fresh copy of the
-- interpreter running this test (the lowest negative arg index, before any options).
-- Module paths are passed on explicitly; the rest of the environment (LD_PRELOAD,
-- ASAN_OPTIONS...) is inherited.
function helper.lua_command(script, ...)
  local first = -1
  while arg and arg[first - 1] do first = first - 1 end
  local cmd = {}
  for _, name in ipairs({ "LUA_CPATH", "LUA_PATH" }) do
    local v = os.getenv(name)
    if v then cmd[#cmd + 1] = name .. "=" .. helper.shell_quote(v) end
  end
  cmd[#cmd + 1] = helper.shell_quote(arg and arg[first] or "lua5.4")
  cmd[#cmd + 1] = helper.shell_quote(script)
  for _, a in ipairs({ ... }) do cmd[#cmd + 1] = helper.shell_quote(a) end
  return table.concat(cmd, " ")
end

-- The contents of a file.
function helper.slurp(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

-- Wall-clock seconds, from luv's clock or LuaSocket's (lua-luv and lua-socket are test
-- dependencies; a case that needs a clock skips without both).
function helper.now()
  local ok, uv = pcall(require, "luv")
  if ok then
    helper.now = function() return uv.hrtime() / 1e9 end
  else
    local ok2, socket = pcall(require, "socket")
    if not ok2 then helper.skip("needs lua-luv or lua-socket for a clock") end
    helper.now = socket.gettime
  end
  return helper.now()
end

local signal_names = { [4] = "SIGILL", [6] = "SIGABRT", [7] = "SIGBUS", [8] = "SIGFPE",
                       [9] = "SIGKILL", [11] = "SIGSEGV", [15] = "SIGTERM" }

-- Runs a test script's cases, each in its own interpreter, so one that crashes (a
-- signal, a sanitizer abort) cannot hide the others. `cases` is a list of { name, fn }.
-- `lua5.4 test_x.lua name` runs that case alone; with no argument every case runs in a
-- child (`<interpreter> <script> <name>`), one line each is printed, and the script
-- exits 1 if any failed, 77 if all skipped, 0 otherwise.
function helper.run_cases(cases)
  local by_name = {}
  for _, c in ipairs(cases) do
    assert(type(c[1]) == "string" and type(c[2]) == "function", "cases are { name, fn }")
    assert(not by_name[c[1]], "duplicate case name " .. c[1])
    by_name[c[1]] = c[2]
  end

  local only = arg and arg[1]
  if only then
    local fn = by_name[only]
    if not fn then
      local names = {}
      for _, c in ipairs(cases) do names[#names + 1] = c[1] end
      error(("no case %q (cases: %s)"):format(only, table.concat(names, ", ")), 2)
    end
    fn()
    helper.cleanup()
    print("ok")
    return  -- the script ends normally: lua_close finalizes what the case left
  end

  local script = assert(arg and arg[0], "run_cases needs the script name in arg[0]")
  local prefix = helper.lua_command(script)

  local out = os.tmpname()
  local failed, skipped = 0, 0
  for _, c in ipairs(cases) do
    local name = c[1]
    local _, how, code = os.execute(("%s %s >%s 2>&1"):format(prefix, helper.shell_quote(name), out))
    local f = assert(io.open(out))
    local output = f:read("a")
    f:close()
    -- Killed by a signal: os.execute says so, or the shell reports 128 + the signal.
    local signal
    if how == "signal" then
      signal = code
    elseif code > 128 and code <= 128 + 64 then
      signal = code - 128
    end
    if signal then
      failed = failed + 1
      print(("FAIL %s: killed by signal %d%s\n%s"):format(name, signal,
        signal_names[signal] and " (" .. signal_names[signal] .. ")" or "", output))
    elseif code == 77 then
      skipped = skipped + 1
      print(("skip %s: %s"):format(name, (output:gsub("^SKIP: ", ""):gsub("\n+$", ""))))
    elseif code == 0 and (output == "ok\n" or output:find("\nok\n$")) then
      print("ok   " .. name)
      -- Notes a case printed (e.g. a mode this kernel lacks) stay visible.
      for line in output:gmatch("[^\n]+") do
        if line:find("^note: ") then print("       " .. line) end
      end
    else
      failed = failed + 1
      local why = code == 0 and "exit status 0 before the case finished (no \"ok\")"
                  or "exit status " .. code
      print(("FAIL %s: %s\n%s"):format(name, why, output))
    end
    io.stdout:flush()
  end
  os.remove(out)
  helper.cleanup()
  if failed > 0 then
    print(("%d of %d cases failed"):format(failed, #cases))
    os.exit(1)
  end
  os.exit(skipped == #cases and 77 or 0)
end

return helper
