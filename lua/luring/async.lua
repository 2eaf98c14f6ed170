-- SPDX-License-Identifier: Apache-2.0
-- luring.async: coroutine tasks on io_uring, with LuaSocket-compatible sockets and
-- io-compatible files. The contract is ASYNC.md; the parts live in luring/async/.
local core = require "luring.async.core"
local socket = require "luring.async.socket"
local file = require "luring.async.file"

local async = {
  _VERSION = "luring.async 0.2.0",
  cancelled = core.cancelled,
  spawn = core.spawn,
  sleep = core.sleep,
  now = core.now,
  timeout = core.timeout,
  queue = core.queue,
  ring = core.ring,
  -- sockets
  connect = socket.connect,
  listen = socket.listen,
  connect_unix = socket.connect_unix,
  listen_unix = socket.listen_unix,
  tcp = socket.tcp,
  tcp6 = socket.tcp6,
  wrap = socket.wrap,
  -- files
  open = file.open,
  stat = file.stat,
  remove = file.remove,
  rename = file.rename,
  mkdir = file.mkdir,
}

local run_options = {
  entries = true, flags = true, on_error = true, recv_multishot = true, receives_last = true,
  register_ring = true, direct_send = true,
}

local function check_options(opts)
  for k in pairs(opts) do
    if not run_options[k] then
      error("bad argument #1 to 'run' (unknown option '" .. tostring(k) ..
            "'; options are entries, flags, on_error, recv_multishot, receives_last, " ..
            "register_ring, direct_send)", 3)
    end
  end
end

-- async.run(fn, ...), async.run(options, fn, ...) or async.run(options)(fn, ...):
-- runs fn(...) as the first task and every task it spawns; fn's results, or fn's error.
-- options: entries (ring size, default 256), flags (luring.setup.*), on_error
-- (function(err, traceback) for errors of tasks nobody joins; default: stderr),
-- recv_multishot (true: each socket receives by one multishot recv, where the kernel
-- has it, instead of a recv request per read; default false), receives_last (false: each
-- round's requests go to the kernel in the order the tasks made them; by default a
-- round's receives go after its sends, so a receive whose data a send of the same round
-- brings finds it at once), register_ring (false: the loop enters the ring by its fd;
-- by default by a registered slot where the kernel has it, 5.18, which skips the fd
-- lookup of each enter), direct_send (false: every send is an io_uring request; by
-- default, except on an SQPOLL ring, a send the socket can take at once is done by a
-- send(2) without waiting, and only one that must wait for room is a request).
function async.run(fn, ...)
  if type(fn) == "table" and getmetatable(fn) == nil then
    local opts = fn
    check_options(opts)
    if select("#", ...) == 0 then
      return function(f, ...)
        if type(f) ~= "function" then
          error("bad argument #1 to 'run' (function expected, got " .. type(f) .. ")", 2)
        end
        return core.run(opts, f, ...)
      end
    end
    local f = ...
    if type(f) ~= "function" then
      error("bad argument #2 to 'run' (function expected, got " .. type(f) .. ")", 2)
    end
    return core.run(opts, ...)
  end
  if type(fn) ~= "function" then
    error("bad argument #1 to 'run' (function expected, got " .. type(fn) .. ")", 2)
  end
  return core.run({}, fn, ...)
end

function async.join(task, timeout) return task:join(timeout) end
function async.cancel(task) return task:cancel() end

return async
