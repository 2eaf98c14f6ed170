-- SPDX-License-Identifier: Apache-2.0
-- Queue mechanics seen from Lua: a full SQ retains nothing, CQ overflow loses nothing,
-- memory stays flat, and the faster ring modes work with do_cqes.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local devnull = luring.open_file("/dev/null", "w")
local devzero = luring.open_file("/dev/zero", "r")

-- Case 7: the fifth request on a 4-entry ring is nil, and a refused request retains
-- nothing: no callback, no string, no slot.
case("case7_full_sq", function()
  local ring = luring.queue_init(4, 0)
  local cb, count = helper.counter()
  for _ = 1, 4 do assert(luring.write(ring, devnull, "x", 0, cb)) end
  assert(luring.write(ring, devnull, "x", 0, cb) == nil)
  assert(luring.read(ring, devzero, 8, 0, cb) == nil)
  assert(luring.recv(ring, devzero, 8, 0, cb) == nil)
  assert(luring.send(ring, devnull, "x", 0, cb) == nil)
  assert(luring.accept(ring, devnull, 0, cb) == nil)
  collectgarbage()
  local before = collectgarbage("count")
  for i = 1, 100000 do
    assert(luring.write(ring, devnull, "refused " .. i, 0, function() end) == nil)
  end
  collectgarbage()
  collectgarbage()
  assert(collectgarbage("count") < before + 64, collectgarbage("count") - before)
  assert(tostring(ring):find("4 in flight"))
  assert(luring.submit(ring) == 4)
  for _ = 1, 4 do assert(luring.write(ring, devnull, "x", 0, cb)) end
  assert(luring.submit_and_wait(ring, 8) == 4)
  assert(luring.do_cqes(ring) == 8)
  assert(count() == 8)
  ring:close()
end)

-- Case 11: 10,000 writes through a 4-entry ring (CQ 8) submitted without reaping: the
-- kernel's overflow backlog is flushed and every callback runs exactly once.
case("case11_cq_overflow", function()
  local ring = luring.queue_init(4, 0)
  local seen = {}
  local total = 10000
  local function cb_for(i)
    return function(_, res)
      assert(res == 1)
      assert(not seen[i], "completion delivered twice")
      seen[i] = true
    end
  end
  for i = 1, total do
    local h = luring.write(ring, devnull, "y", 0, cb_for(i))
    if not h then
      local ret = luring.submit(ring)
      assert(ret >= 0 or ret == -luring.errno.EBUSY, ret)
      h = assert(luring.write(ring, devnull, "y", 0, cb_for(i)))
    end
  end
  assert(luring.submit(ring) >= 0)
  local handled = 0
  local start = os.clock()
  while handled < total do
    local n = luring.do_cqes(ring)
    handled = handled + n
    assert(os.clock() - start < 10, "overflow backlog not drained")
  end
  assert(handled == total)
  for i = 1, total do assert(seen[i], i) end
  assert(luring.do_cqes(ring) == 0)
  ring:close()

  -- The same with submit_and_wait in the loop.
  ring = luring.queue_init(4, 0)
  local count = 0
  for _ = 1, total do
    if not luring.write(ring, devnull, "z", 0, function() count = count + 1 end) then
      luring.submit_and_wait(ring, 1)
      assert(luring.write(ring, devnull, "z", 0, function() count = count + 1 end))
    end
  end
  while count < total do
    luring.submit_and_wait(ring, 1)
    luring.do_cqes(ring)
  end
  assert(count == total)
  ring:close()
end)

-- Case 37: memory stays flat over a few hundred thousand operations (writes, reads,
-- with and without callbacks, 1% of callbacks raising).
case("case37_flat_memory", function()
  local ring = luring.queue_init(256, 0)
  local errors, done = 0, 0
  local function on_write() done = done + 1 end
  local function on_read(_, res, data)
    assert(res == 64 and #data == 64)
    done = done + 1
    if done % 100 == 0 then error("planned failure") end
  end
  local function batch(n)
    for i = 1, n do
      local r = i % 3
      if r == 0 then
        assert(luring.write(ring, devnull, "0123456789abcdef", 0, on_write))
      elseif r == 1 then
        assert(luring.read(ring, devzero, 64, 0, on_read))
      else
        assert(luring.write(ring, devnull, "no callback", 0))
      end
    end
    luring.submit_and_wait(ring, n)
    -- Drain: a raising callback interrupts do_cqes, so loop until nothing is in flight.
    while not tostring(ring):find(" 0 in flight", 1, true) do
      local ok, err = pcall(luring.do_cqes, ring)
      if not ok then
        errors = errors + 1
        assert(tostring(err):find("planned failure"))
      end
      luring.submit_and_wait(ring, 1)
    end
  end
  for _ = 1, 200 do batch(256) end  -- warm up pools and tables
  collectgarbage()
  local rss0, lua0 = helper.rss_kib(), collectgarbage("count")
  for _ = 1, 1200 do batch(256) end  -- ~300,000 operations
  collectgarbage()
  collectgarbage()
  local rss1, lua1 = helper.rss_kib(), collectgarbage("count")
  assert(errors > 0)
  assert(lua1 - lua0 < 256, ("Lua heap grew by %.0f KiB"):format(lua1 - lua0))
  if not helper.sanitized then
    assert(rss1 - rss0 < 2048, ("RSS grew by %d KiB"):format(rss1 - rss0))
  end
  assert(tostring(ring):find(" 0 in flight"), tostring(ring))
  ring:close()
end)

-- Case 20: the task-work ring modes. Completions of a DEFER_TASKRUN ring only show up
-- when the ring enters the kernel: do_cqes alone must find them.
local function fifo_roundtrip(flags, what)
  local ok, ring = pcall(luring.queue_init, 8, flags)
  if not ok then
    print("note: " .. what .. " not available: " .. tostring(ring))
    return
  end
  local rfd, wfd = helper.fifo()
  local got
  assert(luring.read(ring, rfd, 16, 0, function(_, _, data) got = data end))
  assert(luring.submit(ring) == 1)
  assert(luring.write(ring, wfd, "task work", 0))
  assert(luring.submit(ring) == 1)
  local deadline = os.time() + 2
  while not got do
    luring.do_cqes(ring)
    assert(os.time() <= deadline, what .. ": completion never seen by do_cqes")
  end
  assert(got == "task work")
  ring:close()
end
case("case20_defer_taskrun", function()
  fifo_roundtrip(luring.setup.SINGLE_ISSUER | luring.setup.DEFER_TASKRUN, "DEFER_TASKRUN")
end)
case("case20_coop_taskrun", function()
  fifo_roundtrip(luring.setup.COOP_TASKRUN | luring.setup.TASKRUN_FLAG, "COOP_TASKRUN")
end)
case("case20_coop_single_issuer", function()
  fifo_roundtrip(luring.setup.COOP_TASKRUN | luring.setup.SINGLE_ISSUER, "COOP+SINGLE_ISSUER")
end)
-- SQPOLL: the kernel thread submits; strings stay pinned until completion.
case("case20_sqpoll", function()
  local ok, ring = pcall(luring.queue_init, 8, { flags = luring.setup.SQPOLL, sq_thread_idle = 10 })
  if ok then
    local count = 0
    for round = 1, 50 do
      if round % 10 == 0 then os.execute("sleep 0.03") end  -- let the poller sleep
      assert(luring.write(ring, devnull, ("r%d"):format(round), 0, function(_, res)
        assert(res == #("r" .. round))
        count = count + 1
      end))
      helper.run_until(ring, function() return count == round end, 2)
    end
    ring:close()
  else
    print("note: SQPOLL not permitted here: " .. tostring(ring))
  end
end)

-- Case 40: a descriptor closed (and its number reused) while its recv is in flight:
-- the old request keeps its own file reference and never sees the new socket's data.
case("case40_fd_reuse", function()
  local ring = luring.queue_init(8, 0)
  local a1, a2 = helper.tcp_pair()
  local old_fd = a2:getfd()
  local got_old
  assert(luring.recv(ring, old_fd, 64, 0, function(_, res, data) got_old = data end))
  assert(luring.submit(ring) == 1)
  a2:close()
  local b1, b2 = helper.tcp_pair()
  b1:send("for the new socket")
  luring.submit(ring)
  luring.do_cqes(ring)
  assert(got_old == nil, "the old request read the new socket's data")
  assert(b2:receive(18) == "for the new socket")  -- the data went where it belongs
  ring:close()  -- cancels the old recv cleanly
  a1:close(); b1:close(); b2:close()
end)

-- The registered ring fd (5.18): enters name a slot of the thread instead of the fd.
-- Requests go on as before, a ring registered with a request in flight still closes
-- (the slot must be freed, or the kernel keeps the ring), and the 16 slots a thread has
-- come back when their rings close.
case("register_ring_fd", function()
  local E = luring.errno
  local ring = luring.queue_init(8, 0)
  local ret = ring:register_ring_fd()
  if ret == -E.EINVAL then helper.skip("needs IORING_REGISTER_RING_FDS (5.18)") end
  assert(ret == 0, ret)
  assert(ring:register_ring_fd() == 0)  -- registered already
  local cb, count = helper.counter()
  assert(ring:nop(cb))
  assert(ring:submit_and_wait(1) == 1)
  assert(ring:do_cqes() == 1 and count() == 1)
  assert(ring:unregister_ring_fd() == 0)
  assert(ring:unregister_ring_fd() == -E.EINVAL)  -- not registered
  assert(ring:nop(cb))
  assert(ring:submit_and_wait(1) == 1)  -- by the fd again
  assert(ring:do_cqes() == 1 and count() == 2)

  -- A recv that never completes, in flight on a registered ring: close does not wait.
  assert(ring:register_ring_fd() == 0)
  local a, b = helper.tcp_pair()
  assert(ring:recv(b:getfd(), 64, 0, function() end))
  assert(ring:submit() == 1)
  ring:close()
  helper.raises("closed ring", ring.register_ring_fd, ring)
  helper.raises("closed ring", ring.unregister_ring_fd, ring)
  helper.raises("Ring expected", luring.register_ring_fd, "ring")

  -- A thread has 16 slots: the 17th ring is refused with -EBUSY, and closing the rings
  -- gives the slots back (a fresh ring registers again).
  local rings, busy = {}, 0
  for i = 1, 17 do
    rings[i] = luring.queue_init(2, 0)
    local r = rings[i]:register_ring_fd()
    assert(r == 0 or r == -E.EBUSY, r)
    if r == -E.EBUSY then busy = busy + 1 end
  end
  assert(busy >= 1, "17 registered rings in one thread")
  for _, r in ipairs(rings) do r:close() end
  local again = luring.queue_init(2, 0)
  assert(again:register_ring_fd() == 0)
  again:close()
  a:close(); b:close()
end)

helper.run_cases(cases)
