-- SPDX-License-Identifier: Apache-2.0
-- Every program in examples/ runs as a user would run it, and does what it says.
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local examples = "../../examples/"

-- Runs an example to the end; returns its output (stdout and stderr) and exit status.
local function run(script, input, ...)
  local cmd = helper.lua_command(examples .. script, ...)
  if input then cmd = input .. " | " .. cmd end
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- Starts a server example in the background; returns its port and a function that
-- stops it. The example prints "listening on port N", or takes the port as argument.
local function start_server(script, port)
  local out = helper.tmpname()
  local pidfile = helper.tmpname()
  local cmd = helper.lua_command(examples .. script, port and tostring(port) or nil)
  assert(os.execute(cmd .. " > " .. out .. " 2>&1 & echo $! > " .. pidfile))
  local pid = helper.slurp(pidfile):match("%d+")
  local socket = require "socket"
  local deadline = socket.gettime() + 10
  while not port do
    port = tonumber(helper.slurp(out):match("listening on port (%d+)"))
    if not port then
      assert(socket.gettime() < deadline, "server did not start: " .. helper.slurp(out))
      socket.sleep(0.02)
    end
  end
  -- Wait until it accepts connections.
  while true do
    local c = socket.connect("127.0.0.1", port)
    if c then c:close() break end
    assert(socket.gettime() < deadline, "server does not accept: " .. helper.slurp(out))
    socket.sleep(0.02)
  end
  return port, function() os.execute("kill " .. pid .. " 2>/dev/null") end
end

local function need_socket()
  if not pcall(require, "socket") then helper.skip("LuaSocket (lua-socket) is not installed") end
end

local function echo_check(port)
  local socket = require "socket"
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(5)
  for i = 1, 20 do
    local line = ("line %d %s"):format(i, ("x"):rep(i * 37))
    assert(c:send(line .. "\n"))
    assert(c:receive("*l") == line)
  end
  c:close()
end

case("echo_server_async", function()
  need_socket()
  local port, stop = start_server("echo_server.lua")
  echo_check(port)
  stop()
end)

case("echo_server_callback", function()
  need_socket()
  local port, stop = start_server("callback/echo_server.lua")
  echo_check(port)
  echo_check(port)  -- a second connection after the first closed
  stop()
end)

local function free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

case("http_hello_and_get", function()
  need_socket()
  local port, stop = start_server("http_hello.lua", free_port())
  -- Keep-alive: several requests on one connection, as wrk sends them.
  local socket = require "socket"
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(5)
  for _ = 1, 3 do
    assert(c:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert(c:receive("*l") == "HTTP/1.1 200 OK")
    local length
    repeat
      local h = assert(c:receive("*l"))
      length = length or tonumber(h:match("^Content%-Length: (%d+)"))
    until h == ""
    assert(c:receive(length) == "Hello, World!")
  end
  c:close()
  -- Both HTTP/1.0 clients against it.
  local out, code = run("http_get.lua", nil, "127.0.0.1", port, "/")
  assert(code == 0 and out == "HTTP/1.1 200 OK\nHello, World!", out)
  out, code = run("callback/http_get.lua", nil, "127.0.0.1", port, "/")
  assert(code == 0 and out:find("^HTTP/1.1 200 OK\r\n") and out:find("\r\n\r\nHello, World!$"), out)
  stop()
end)

-- What the server benchmark does to it: wrk -t1 -c64 -d5s, with zero errors.
case("http_hello_wrk", function()
  need_socket()
  if not os.execute("command -v wrk > /dev/null") then helper.skip("wrk is not installed") end
  local port, stop = start_server("http_hello.lua", free_port())
  -- wrk is not ours: no sanitizer runtime preloaded into it (the ASan run sets one).
  local p = assert(io.popen(("env -u LD_PRELOAD wrk -t1 -c64 -d5s http://127.0.0.1:%d/ 2>&1"):format(port)))
  local out = p:read("a")
  p:close()
  stop()
  local requests = tonumber(out:match("(%d+) requests in"))
  assert(requests and requests > 1000, out)
  assert(not out:find("Socket errors", 1, true), out)
  assert(not out:find("Non%-2xx"), out)
end)

case("cp", function()
  local from, to = helper.tmpname(), helper.tmpname()
  local f = assert(io.open(from, "wb"))
  -- 5 MiB and a bit: whole blocks for every worker, and a short last block.
  local rnd = {}
  for i = 1, 4096 do rnd[i] = string.char(math.random(0, 255)) end
  local chunk = table.concat(rnd)
  for _ = 1, 1281 do f:write(chunk) end
  f:write("tail")
  f:close()
  local out, code = run("cp.lua", nil, from, to)
  assert(code == 0, out)
  assert(helper.slurp(from) == helper.slurp(to), "the copy differs")
  -- An empty file copies too.
  local empty = helper.tmpname()
  io.open(empty, "w"):close()
  out, code = run("cp.lua", nil, empty, to)
  assert(code == 0 and helper.slurp(to) == "", out)
end)

case("deadline", function()
  local out, code = run("callback/deadline.lua", "echo hello")
  assert(code == 0 and out == "got: hello\n", out)
  need_socket()
  local socket = require "socket"
  local t0 = socket.gettime()
  -- stdin stays open and silent; the backgrounded sleep is not waited for.
  out, code = run("callback/deadline.lua", "{ sleep 3 & }")
  local took = socket.gettime() - t0
  assert(code == 0 and out == "no input within 1 s\n", out)
  assert(took >= 0.95 and took < 2.9, took)
end)

case("read_lines", function()
  local path = helper.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("one\ntwo\n\nfour")
  f:close()
  local out, code = run("callback/read_lines.lua", nil, path)
  assert(code == 0, out)
  assert(out == path .. ": 13 bytes\n1\tone\n2\ttwo\n3\t\n4\tfour\n", out)
  out, code = run("callback/read_lines.lua", nil, "/nonexistent/file")
  assert(code ~= 0 and out:find("No such file or directory"), out)
end)

case("probe_report", function()
  local out, code = run("probe_report.lua")
  assert(code == 0, out)
  assert(out:find("^%d+\tnop\ttrue\n") or out:find("^[%w_]+\t"), out)  -- available, or why not
end)

-- The C++ core's example (examples/core/read_file.cpp), built by meson.
case("core_read_file", function()
  local exe = os.getenv("EXAMPLE_READ_FILE")
  if not exe then helper.skip("EXAMPLE_READ_FILE is not set (run through meson)") end
  local path = helper.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(("0123456789"):rep(500))
  f:close()
  local p = assert(io.popen(helper.shell_quote(exe) .. " " .. helper.shell_quote(path)))
  local out = p:read("a")
  assert(p:close())
  assert(out == ("0123456789"):rep(500):sub(1, 4096), #out)
end)

-- The same servers on luv and cqueues (the README compares their lengths): they work.
case("peers", function()
  need_socket()
  local function has(mod) return pcall(require, mod) end
  local ran = 0
  for _, peer in ipairs({ { "luv", "luv" }, { "cqueues", "cqueues" } }) do
    if has(peer[2]) then
      local port, stop = start_server("../tools/bench/peers/echo_" .. peer[1] .. ".lua")
      echo_check(port)
      stop()
      local hport, hstop = start_server("../tools/bench/peers/http_hello_" .. peer[1] .. ".lua",
                                        free_port())
      local socket = require "socket"
      local c = assert(socket.connect("127.0.0.1", hport))
      c:settimeout(5)
      for round = 1, 2 do
        for _ = 1, 2 do
          assert(c:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
          assert(c:receive("*l") == "HTTP/1.1 200 OK")
          repeat local h = assert(c:receive("*l")) until h == ""
          assert(c:receive(13) == "Hello, World!")
        end
        if round == 1 then
          -- A client that resets its connection (as wrk does at its end) while the
          -- server reads: the server goes on serving the others (the benchmark
          -- measured a cqueues server that had died there).
          local r = assert(socket.connect("127.0.0.1", hport))
          r:settimeout(5)
          assert(r:send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
          repeat local h = assert(r:receive("*l")) until h == ""
          assert(r:receive(13) == "Hello, World!")  -- the server reads again: reset it
          r:setoption("linger", { on = true, timeout = 0 })
          r:close()
          c:close()
          socket.sleep(0.1)
          c = assert(socket.connect("127.0.0.1", hport))
          c:settimeout(5)
        end
      end
      c:close()
      hstop()
      ran = ran + 1
    end
  end
  if ran == 0 then helper.skip("neither lua-luv nor lua-cqueues is installed") end
end)

helper.run_cases(cases)
helper.cleanup()
