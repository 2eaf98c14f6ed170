-- SPDX-License-Identifier: Apache-2.0
-- Every entry point against wrong types and ranges: a clear error naming the function
-- and argument, never a crash, and no side effect (no SQE taken, nothing retained).
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- Each case's rings and file, made by setup (every case runs in its own process).
local ring, other, victim, path, fd
local function setup()
  ring = luring.queue_init(4, 0)
  other = luring.queue_init(4, 0)
  victim = luring.queue_init(4, 0)  -- for queue_exit, which closes it
  path = helper.tmpname()
  fd = luring.open_file(path, "w+")
end
local function teardown()
  ring:close()
  other:close()
end

local values = {
  ["nil"] = nil, ["true"] = true, ["-1"] = -1, ["0"] = 0, ["1.5"] = 1.5,
  ["2^31"] = 2^31, ["2^63-1"] = math.maxinteger, ["-2^63"] = math.mininteger,
  ['"x"'] = "x", ['"a\\0b"'] = "a\0b", ["{}"] = {}, ["function"] = function() end,
}
local names = {}
for k in pairs(values) do names[#names + 1] = k end
names[#names + 1] = "nil"
table.sort(names)

case("fuzz", function()
  setup()
  -- The valid arguments of each function; each position is replaced by each bad value.
  local calls = {
    queue_init = { 4, 0 },
    queue_exit = { victim },
    submit = { ring },
    submit_and_wait = { ring, 0 },
    do_cqes = { ring },
    cqe_seen = { ring, nil },
    write = { ring, fd, "data", 0, nil },
    read = { ring, fd, 16, 0, nil },
    recv = { ring, fd, 16, 0, nil },
    send = { ring, fd, "data", 0, nil },
    accept = { ring, fd, 0, nil },
    open_file = { path, "r" },
    strerror = { 2 },
  }

  local function space() return luring.submit(ring) end  -- drains the SQ, returns queued

  local errors = 0
  for fname, args in pairs(calls) do
    for pos = 1, #args + 1 do
      for _, vname in ipairs(names) do
        local a = table.pack(table.unpack(args, 1, math.max(#args, 5)))
        a[pos] = values[vname]
        local ok, err = pcall(luring[fname], table.unpack(a, 1, math.max(#args, pos)))
        if ok then
          -- Accepted: it must have been a valid call. Clean up what it made.
          if fname == "queue_init" and type(err) == "userdata" then luring.queue_exit(err) end
          -- (An open_file fd from a valid path and mode is left open: nothing in
          -- this test closes descriptors.)
        else
          errors = errors + 1
          err = tostring(err)
          -- The message names the function and the argument.
          if not err:find("bad argument #" .. pos, 1, true) and
             not err:find("could not initialise queue", 1, true) then
            error(("%s arg %d = %s: unexpected message %q"):format(fname, pos, vname, err))
          end
          if not err:find("could not initialise queue", 1, true) then
            assert(err:find(fname, 1, true), err)
          end
        end
      end
    end
    -- Whatever happened, completions of accepted calls are drained and nothing is pending.
    space()
    luring.submit_and_wait(ring, 0)
    while luring.do_cqes(ring) > 0 do end
  end
  assert(errors > 100)
  -- The fuzz may have left a read on fd 0 (stdin) in flight for good: closing cancels it.
  teardown()
end)

case("ranges", function()
  setup()
  -- Specific ranges.
  helper.raises("bad argument #2 to 'luring.read' (file descriptor out of range)",
                luring.read, ring, -1, 1, 0)
  helper.raises("bad argument #2", luring.read, ring, 2^31, 1, 0)
  helper.raises("bad argument #3 to 'luring.read' (size must be", luring.read, ring, fd, -1, 0)
  helper.raises("bad argument #3", luring.read, ring, fd, 2^32, 0)
  helper.raises("bad argument #3", luring.read, ring, fd, 2^53, 0)
  helper.raises("bad argument #3", luring.recv, ring, fd, 0x7ffff001, 0)
  helper.raises("bad argument #4 to 'luring.read' (offset", luring.read, ring, fd, 1, -5)
  helper.raises("bad argument #4 to 'luring.recv' (flags out of range)",
                luring.recv, ring, fd, 1, -1)
  helper.raises("bad argument #4", luring.send, ring, fd, "x", 2^31)
  helper.raises("bad argument #3 to 'luring.accept' (flags", luring.accept, ring, fd, -1)
  helper.raises("bad argument #5 to 'luring.write' (function expected, got number)",
                luring.write, ring, fd, "x", 0, 42)
  helper.raises("bad argument #5 to 'luring.read' (function expected, got table)",
                luring.read, ring, fd, 1, 0, {})
  helper.raises("bad argument #3 to 'luring.write' (string expected, got table)",
                luring.write, ring, fd, {}, 0)
  helper.raises(
    "bad argument #2 to 'luring.submit_and_wait' (wait_nr must be between 0 and 4294967295)",
    luring.submit_and_wait, ring, -1)
  helper.raises("bad argument #2 to 'luring.cqe_seen' (cqe expected, got nil)",
                luring.cqe_seen, ring, nil)
  helper.raises("cqe expected, got number", luring.cqe_seen, ring, 42)
  helper.raises("cqe expected, got string", luring.cqe_seen, ring, "x")
  -- A light userdata that is no cqe.
  helper.raises("not a cqe", luring.cqe_seen, ring, debug.upvalueid(helper.raises, 1))
  -- A ring of the wrong type.
  helper.raises("bad argument #1 to 'luring.read' (luring.Ring expected, got table)",
                luring.read, {}, fd, 1, 0)
  -- Method calls name the method.
  helper.raises("calling 'read' on bad self", function()
    local impostor = { read = ring.read }
    return impostor:read(fd, 1, 0)
  end)
  teardown()
end)

-- Every method, reached through the real metatable (debug.getmetatable), called with
-- something that is not an open ring as self: an argument error, never a crash, and the
-- impostor (a FILE* stream, a light userdata) is left untouched.
case("methods_bad_self", function()
  setup()
  local methods = debug.getmetatable(ring).__index
  local token
  assert(ring:write(fd, "t", 0, function(cqe) token = cqe end))
  assert(ring:submit_and_wait(1) == 1 and ring:do_cqes() == 1)
  local closed = luring.queue_init(2, 0)
  closed:close()
  local impostors = {
    { token, "luring.Ring expected, got light userdata" },
    { debug.upvalueid(setup, 1), "luring.Ring expected, got light userdata" },
    { io.stdout, "luring.Ring expected, got FILE*" },
    { nil, "luring.Ring expected, got nil" },
    { {}, "luring.Ring expected, got table" },
    { 3, "luring.Ring expected, got number" },
    { "ring", "luring.Ring expected, got string" },
    { closed, "attempt to use a closed ring" },
  }
  local names = {}
  for name, f in pairs(methods) do
    assert(type(f) == "function", name)
    names[#names + 1] = name
  end
  table.sort(names)
  assert(#names >= 20, #names)
  for _, name in ipairs(names) do
    for _, imp in ipairs(impostors) do
      -- Plausible arguments after self, so only self is wrong.
      local ok, res = pcall(methods[name], imp[1], fd, "x", 0)
      if imp[1] == closed and (name == "close" or name == "queue_exit") then
        assert(ok, res)  -- closing a closed ring is fine (idempotent)
      else
        assert(not ok, ("%s(%s) did not raise"):format(name, tostring(imp[1])))
        local msg = tostring(res)
        assert(msg:find("bad argument #1 to '", 1, true), name .. ": " .. msg)
        assert(msg:find(imp[2], 1, true), name .. ": " .. msg)
      end
    end
    -- The method form names the method and calls self "bad self".
    local fake = setmetatable({}, { __index = methods })
    helper.raises("calling '" .. name .. "' on bad self (luring.Ring expected, got table)",
                  assert(load("local fake, fd = ...; return fake:" .. name .. "(fd, 'x', 0)")),
                  fake, fd)
  end
  assert(io.type(io.stdout) == "file")
  -- The real ring was never touched: nothing queued, nothing in flight.
  assert(ring:submit() == 0 and ring:in_flight() == 0)
  teardown()
end)

-- A callable table is a fine callback.
case("callable_table", function()
  setup()
  local called = 0
  local callable = setmetatable({}, { __call = function() called = called + 1 end })
  assert(luring.write(ring, fd, "c", 0, callable))
  luring.submit_and_wait(ring, 1)
  assert(luring.do_cqes(ring) == 1 and called == 1)
  teardown()
end)

case("no_side_effect", function()
  setup()
  -- No side effect: a refused call takes no SQE.
  assert(luring.submit(ring) == 0)
  for _ = 1, 4 do
    pcall(luring.write, ring, fd, "x", -7)
    pcall(luring.read, ring, fd, -1, 0)
  end
  assert(luring.submit(ring) == 0)
  for _ = 1, 4 do assert(luring.write(ring, fd, "x", 0)) end  -- all 4 SQEs still free
  assert(luring.submit_and_wait(ring, 4) == 4)
  assert(luring.do_cqes(ring) == 4)
  teardown()
end)

helper.run_cases(cases)
