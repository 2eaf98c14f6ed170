-- SPDX-License-Identifier: Apache-2.0
-- The ring object: creation, method form, __tostring, __close, queue_exit, constants.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- queue_init: a ring; bad sizes are argument errors before any syscall.
case("queue_init", function()
  local ring = luring.queue_init(4, 0)
  assert(tostring(ring):find("^luring.Ring %(sq 4, cq 8, 0 in flight%)"))
  luring.queue_exit(ring)
  assert(tostring(ring):find("^luring.Ring %(closed%)"))

  helper.raises("bad argument #1 to", luring.queue_init, 0, 0)
  helper.raises("bad argument #1 to", luring.queue_init, -1, 0)
  helper.raises("number has no integer representation", luring.queue_init, 1.5, 0)
  helper.raises("bad argument #1 to", luring.queue_init, 2^32, 0)
  helper.raises("bad argument #1 to", luring.queue_init, 2^40, 0)
  helper.raises("bad argument #1 to", luring.queue_init, 65536, 0)
  helper.raises("bad argument #2 to", luring.queue_init, 4, -1)
  helper.raises("bad argument #1 to", luring.queue_init, "x", 0)
  -- An unknown flag: the kernel's reason, cleanly.
  helper.raises("could not initialise queue", luring.queue_init, 8, 0x80000000)
  -- flags default to 0; an options table works too.
  luring.queue_exit(luring.queue_init(2))
  local r = luring.queue_init(4, { cq_entries = 64 })
  assert(tostring(r):find("cq 64"), tostring(r))
  r:close()
  helper.raises("field 'cq_entries'", luring.queue_init, 4, { cq_entries = -5 })
end)

-- queue_init's options: an unknown key raises (a misspelt option must not pass
-- silently), and a flag that needs a companion says which, before the kernel's bare
-- EINVAL. Both are checked here, so they hold on every kernel.
case("queue_init_options", function()
  local base = helper.fd_count()
  helper.raises("bad argument #2 to 'queue_init' (unknown option 'flag'; options are flags, " ..
                "cq_entries, sq_thread_idle, sq_thread_cpu)", luring.queue_init, 8, { flag = 1 })
  helper.raises("unknown option 'cq_entry'", luring.queue_init, 8,
                { cq_entries = 16, cq_entry = 1 })
  helper.raises("unknown option '1'", luring.queue_init, 8, { 2 })
  helper.raises("unknown option 'FLAGS'", luring.queue_init, 8, { FLAGS = 0 })
  local s = luring.setup
  helper.raises("bad argument #2 to 'queue_init' (DEFER_TASKRUN needs SINGLE_ISSUER)",
                luring.queue_init, 8, s.DEFER_TASKRUN)
  helper.raises("DEFER_TASKRUN needs SINGLE_ISSUER", luring.queue_init, 8,
                { flags = s.DEFER_TASKRUN | s.COOP_TASKRUN })
  helper.raises("TASKRUN_FLAG needs COOP_TASKRUN or DEFER_TASKRUN", luring.queue_init, 8,
                s.TASKRUN_FLAG)
  helper.raises("SQ_AFF needs SQPOLL", luring.queue_init, 8, { flags = s.SQ_AFF })
  assert(helper.fd_count() == base, "a refused queue_init left a descriptor open")
  -- With the companion the kernel decides: it works where the probe says it does.
  if helper.setup_flags_supported().defer_taskrun then
    local r = luring.queue_init(8, s.SINGLE_ISSUER | s.DEFER_TASKRUN)
    assert(r:submit() == 0)
    r:close()
    -- DEFER_TASKRUN is TASKRUN_FLAG's other companion (the kernel takes either).
    r = luring.queue_init(8, s.SINGLE_ISSUER | s.DEFER_TASKRUN | s.TASKRUN_FLAG)
    assert(r:submit() == 0)
    r:close()
  else
    print("note: no DEFER_TASKRUN on this kernel, only the refusal is tested")
  end
  -- Every known option at once is accepted.
  local r = luring.queue_init(8, { flags = 0, cq_entries = 32, sq_thread_idle = 0,
                                   sq_thread_cpu = 0 })
  assert(tostring(r):find("cq 32"), tostring(r))
  r:close()
end)

-- Closing a ring closes its descriptor, whatever its size (the SQE array of 128 entries
-- and more is larger than a page), with requests in flight or not, by close or by the
-- collector.
case("close_releases_fd", function()
  local testlib = require "testlib"
  local base = helper.fd_count()
  for _, n in ipairs({ 1, 8, 64, 128, 256 }) do  -- within 5.10's 64 KiB memlock
    local r = luring.queue_init(n, 0)
    assert(helper.fd_count() == base + 1)
    r:close()
    assert(helper.fd_count() == base, ("queue_init(%d): fds %d -> %d after close"):format(
      n, base, helper.fd_count()))
    local a, b = assert(testlib.socketpair())
    r = luring.queue_init(n, { cq_entries = 2 * n })
    assert(r:recv(a, 16, 0, function() end))
    assert(r:submit() == 1)
    r = nil
    collectgarbage()
    collectgarbage()
    assert(testlib.close(a) and testlib.close(b))
    assert(helper.fd_count() == base, ("queue_init(%d) collected: fds %d -> %d"):format(
      n, base, helper.fd_count()))
  end
end)

-- The method form is the same function as the module form.
case("method_form", function()
  local ring = luring.queue_init(8, 0)
  local path = helper.tmpname()
  local fd = luring.open_file(path, "w+")
  local wrote, got
  assert(ring:write(fd, "method form", 0, function(cqe, res) wrote = res end))
  assert(ring:submit_and_wait(1) == 1)
  assert(ring:do_cqes() == 1)
  assert(wrote == 11)
  assert(ring:read(fd, 64, 7, function(cqe, res, data) got = data end))
  assert(luring.submit_and_wait(ring, 1) == 1)
  assert(luring.do_cqes(ring) == 1)
  assert(got == "form", got)
  ring:close()
  ring:close()  -- idempotent
  ring:queue_exit()
  helper.raises("closed ring", ring.submit, ring)
  helper.raises("closed ring", luring.read, ring, fd, 1, 0)
  helper.raises("closed ring", luring.do_cqes, ring)
end)

-- <close> releases the ring at the end of the block.
case("close_attribute", function()
  local escaped
  do
    local ring <close> = luring.queue_init(4, 0)
    escaped = ring
    assert(ring:submit() == 0)
  end
  assert(tostring(escaped):find("closed"))
end)

-- The metatable is protected; the wrong userdata is refused.
case("metatable", function()
  local ring = luring.queue_init(4, 0)
  assert(getmetatable(ring) == "luring.Ring is not accessible")
  helper.raises("luring.Ring expected", luring.submit, io.stdout)
  helper.raises("luring.Ring expected", luring.submit, nil)
  ring:close()
end)

-- The metatable's own functions, reached with debug.getmetatable, check their argument
-- like every entry point: __gc/__close/__tostring of something that is not a ring raise
-- "bad argument" (__gc of a light userdata used to close "the ring" at that address and
-- crash; __tostring(io.stdout) read a FILE* stream's block as a ring).
case("metatable_functions_check_self", function()
  local ring = luring.queue_init(4, 0)
  local mt = debug.getmetatable(ring)
  assert(type(mt) == "table" and type(mt.__gc) == "function")
  -- A light userdata that points nowhere (a cqe token), and one that points at memory.
  local token
  local devnull = luring.open_file("/dev/null", "w")
  assert(ring:write(devnull, "t", 0, function(cqe) token = cqe end))
  assert(ring:submit_and_wait(1) == 1 and ring:do_cqes() == 1)
  assert(require("testlib").close(devnull))
  assert(type(token) == "userdata" and debug.getmetatable(token) == nil)
  local pointer = debug.upvalueid(helper.raises, 1)
  local bad = {
    { token, "light userdata" }, { pointer, "light userdata" }, { io.stdout, "FILE*" },
    { nil, "nil" }, { 42, "number" }, { "ring", "string" }, { {}, "table" },
    { print, "function" }, { coroutine.create(print), "thread" }, { true, "boolean" },
  }
  for _, fname in ipairs({ "__gc", "__close", "__tostring" }) do
    for _, b in ipairs(bad) do
      local msg = helper.raises("bad argument #1 to '", mt[fname], b[1])
      assert(msg:find("' (luring.Ring expected, got " .. b[2] .. ")", 1, true),
             fname .. ": " .. msg)
    end
  end
  for _, fname in ipairs({ "__gc", "__close", "__tostring" }) do
    helper.raises("' (luring.Ring expected, got no value)", mt[fname])
  end
  -- With the error value __close gets as its second argument, too.
  helper.raises("luring.Ring expected, got FILE*", mt.__close, io.stdout, "an error")
  -- Nothing was touched: the stream and the ring both still work.
  assert(io.type(io.stdout) == "file" and io.stdout:write("") == io.stdout)
  assert(tostring(ring):find("^luring.Ring %(sq 4, cq 8, 0 in flight%)"), tostring(ring))
  assert(mt.__tostring(ring) == tostring(ring))
  assert(ring:submit() == 0)
  -- On a ring they do their job, idempotently.
  mt.__close(ring, nil)
  assert(mt.__tostring(ring):find("^luring.Ring %(closed%)"))
  mt.__gc(ring)
  mt.__close(ring)
  helper.raises("closed ring", ring.submit, ring)
  -- The other ring is still fine after its sibling's metatable was abused.
  local r2 = luring.queue_init(2, 0)
  assert(r2:submit() == 0)
  r2:close()
end)

-- debug.setuservalue cannot replace what the kernel reads from and what dispatch calls
-- (the refs table: callbacks, pinned strings). Whether the ring refuses user values
-- (setuservalue gives fail) or puts its own table back, requests already in flight
-- keep their callbacks and pinned strings, new ones work, and a table swapped in is
-- never used. Setting 42 used to make the next op or dispatch index 42 and crash; a
-- swapped-in table dropped the real one with its callbacks and pins.
case("user_value_swap", function()
  local ring = luring.queue_init(8, 0)
  local rfd, wfd = helper.fifo()
  local fake = {}
  local function swap_all()
    for _, v in ipairs({ 42, "x", fake, true }) do
      for n = -1, 3 do
        local ret = debug.setuservalue(ring, v, n)
        assert(ret == nil or rawequal(ret, ring), tostring(ret))  -- fail, or done
      end
    end
    for n = -1, 3 do debug.setuservalue(ring, nil, n) end
  end
  -- The string the kernel reads (> 1 KiB: pinned, not copied), not a constant.
  local function pinned(tag)
    return (tag .. "-pinned!"):rep(300) .. tostring(os.clock())
  end
  local function check_transfer(queue_first)
    local big = pinned(queue_first and "early" or "late")
    local want = big
    local wrote, got = nil, ""
    if queue_first then  -- in flight (queued) before the swap
      assert(ring:write(wfd, big, 0, function(_, res) wrote = res end))
      big = nil
      swap_all()
    else  -- queued after it
      swap_all()
      assert(ring:write(wfd, big, 0, function(_, res) wrote = res end))
      big = nil
      swap_all()
    end
    collectgarbage()
    collectgarbage()
    local junk = {}
    for i = 1, 2000 do junk[i] = string.rep(string.char(i % 256), #want) end  -- reuse freed memory
    junk = nil
    helper.run_until(ring, function() return wrote ~= nil end)
    assert(wrote == #want, wrote)
    while #got < #want do  -- a FIFO read may return less than was written
      local more
      assert(ring:read(rfd, 4096, 0, function(_, _, data) more = data end))
      swap_all()
      collectgarbage()
      helper.run_until(ring, function() return more ~= nil end)
      got = got .. more
    end
    assert(got == want, "the pinned string was freed or changed under the kernel")
  end
  check_transfer(true)
  check_transfer(false)
  assert(next(fake) == nil, "the ring stored its callbacks or pins in a swapped-in table")
  -- Whatever getuservalue gives now is not the swapped-in junk.
  for n = -1, 3 do
    local v = debug.getuservalue(ring, n)
    assert(v == nil or (type(v) == "table" and v ~= fake), tostring(v))
  end
  assert(ring:submit() == 0 and ring:do_cqes() == 0)
  assert(tostring(ring):find(" 0 in flight"), tostring(ring))
  ring:close()
  swap_all()  -- and on a closed ring
  ring:close()
end)

-- Constants. Each table raises for a name it does not have: a misspelt flag never
-- passes silently as nil (0 would be a different request).
case("constants", function()
  assert(luring.setup.SQPOLL == 2)
  assert(luring.setup.DEFER_TASKRUN == 1 << 13)
  assert(luring.errno.EAGAIN == 11 and luring.errno.ECANCELED == 125)
  assert(luring.msg.NOSIGNAL > 0 and luring.sock.CLOEXEC > 0)
  local msg = helper.raises("luring.msg has no constant 'NOSIGNALL'",
                            function() return luring.msg.NOSIGNALL end)
  assert(not msg:find("bad argument", 1, true), msg)
  helper.raises("luring.msg has no constant 'NOSIGNALL'",
                function() return luring.msg.NOSIGNAL | luring.msg.NOSIGNALL end)
  for _, t in ipairs({ "setup", "errno", "msg", "sock", "sqe" }) do
    helper.raises("luring." .. t .. " has no constant 'NOPE'", function() return luring[t].NOPE end)
    helper.raises("luring." .. t .. " has no constant '1'", function() return luring[t][1] end)
    assert(rawget(luring[t], "NOPE") == nil)
  end
  assert(luring.sqe.ASYNC > 0 and luring.errno.ENOENT == 2)
end)

-- strerror takes either sign.
case("strerror", function()
  assert(luring.strerror(2) == luring.strerror(-2))
  assert(luring.strerror(-luring.errno.ENOENT):find("No such file"))
end)

helper.run_cases(cases)
