-- SPDX-License-Identifier: Apache-2.0
-- Waiting (reliability cases 15 and 39): Ctrl-C interrupts submit_and_wait and leaves
-- the ring consistent; submit_and_wait never waits for completions that cannot come.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local function now() return helper.now() end
local slurp, lua_command = helper.slurp, helper.lua_command

-- Runs `source` in a child interpreter, sends it SIGINT 200 ms after it says "ready"
-- (a line on stdout), and kills it if it is still alive 2 s after that. Returns its
-- exit status (128 + signal if killed), stdout and stderr.
local function interrupt_child(source)
  local script, out, err = helper.tmpname(), helper.tmpname(), helper.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(source)
  f:close()
  local sh = ([[
    %s >%s 2>%s &
    child=$!
    i=0
    while ! grep -q ready %s && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
    sleep 0.2
    kill -INT $child
    ( sleep 2; kill -KILL $child ) >/dev/null 2>&1 &
    watchdog=$!
    wait $child
    status=$?
    kill $watchdog 2>/dev/null
    exit $status
  ]]):format(lua_command(script), out, err, out)
  local _, how, code = os.execute(sh)
  assert(how == "exit", how)
  return code, slurp(out), slurp(err)
end

-- Case 15: SIGINT while submit_and_wait waits for a recv that will never complete.
-- The stand-alone interpreter's handler raises "interrupted!" once the wait returns;
-- if the wait were retried on EINTR the child would hang until the watchdog kills it.
-- Both with the recv submitted by the waiting call itself (the kernel then returns
-- the submitted count) and submitted before (the wait alone: -EINTR).
local function sigint_during_wait(submit_first)
  local status, out, err = interrupt_child(([[
    local luring = require "luring"
    local helper = require "helper"
    local client, peer = helper.tcp_pair()
    local r = luring.queue_init(4, 0)
    assert(r:recv(client:getfd(), 16, 0, function() print("callback ran") end))
    if %s then assert(r:submit() == 1) end
    io.stdout:write("ready\n")
    io.stdout:flush()
    local ret = luring.submit_and_wait(r, 1)
    print("submit_and_wait returned " .. ret)
  ]]):format(submit_first))
  assert(status ~= 137, "the child ignored SIGINT and had to be killed: " .. err)
  assert(status ~= 0, "the child exited 0 after SIGINT")
  assert(err:find("interrupted!", 1, true), "stderr: " .. err)
  assert(out == "ready\n", out)
end
case("case15_sigint_wait", function() sigint_during_wait(false) end)
case("case15_sigint_wait_submitted", function() sigint_during_wait(true) end)

-- The interrupted wait leaves the ring consistent: the recv is still in flight, and
-- completes exactly once when data arrives.
case("case15_ring_consistent", function()
  local status, out, err = interrupt_child([[
    local luring = require "luring"
    local helper = require "helper"
    local client, peer = helper.tcp_pair()
    local r = luring.queue_init(4, 0)
    local calls, got = 0
    assert(r:recv(client:getfd(), 16, 0, function(_, res, data)
      calls = calls + 1
      got = data
    end))
    assert(r:submit() == 1)
    io.stdout:write("ready\n")
    io.stdout:flush()
    local ok, e = pcall(luring.submit_and_wait, r, 1)
    assert(not ok and e:find("interrupted!", 1, true), e)
    assert(tostring(r):find(" 1 in flight"), tostring(r))
    assert(r:do_cqes() == 0 and calls == 0)
    peer:send("after the signal")
    assert(r:submit_and_wait(1) == 0)
    assert(r:do_cqes() == 1)
    assert(calls == 1 and got == "after the signal", got)
    assert(r:do_cqes() == 0 and calls == 1)
    r:close()
    print("recovered")
  ]])
  assert(status == 0, ("status %d, stderr: %s"):format(status, err))
  assert(out == "ready\nrecovered\n", out)
end)

-- Runs fn, but sends this process SIGINT if it is still running after `seconds`: the
-- interpreter then raises "interrupted!" in place of hanging until meson's timeout.
local function within(seconds, what, fn)
  local pidfile = helper.tmpname()
  assert(os.execute(("(sleep %g; kill -INT %d) >/dev/null 2>&1 & echo $! > %s")
    :format(seconds, helper.pid(), pidfile)))
  local ok, err = pcall(fn)
  os.execute("kill " .. slurp(pidfile):match("%d+") .. " 2>/dev/null")
  if not ok then
    if tostring(err):find("interrupted!", 1, true) then
      error(("%s still waiting after %g s"):format(what, seconds), 2)
    end
    error(err, 0)
  end
end

-- Case 39: wait_nr that can never be satisfied.
case("case39_wait_nr", function()
  local r = luring.queue_init(8, 0)
  helper.raises("bad argument #2 to", luring.submit_and_wait, r, -1)
  helper.raises("bad argument #2 to", luring.submit_and_wait, r, math.mininteger)
  helper.raises("bad argument #2 to", luring.submit_and_wait, r, 1.5)
  helper.raises("bad argument #2 to", luring.submit_and_wait, r, "many")
  helper.raises("bad argument #2 to", luring.submit_and_wait, r)

  -- Nothing outstanding: returns at once, whatever it is asked to wait for.
  local t0 = now()
  within(5, "submit_and_wait with nothing outstanding", function()
    assert(luring.submit_and_wait(r, 1) == 0)
    assert(luring.submit_and_wait(r, 100) == 0)
    assert(r:submit_and_wait(0xffffffff) == 0)
  end)
  assert(now() - t0 < 1)

  -- One request outstanding, 100 asked for: returns once that one completes. It is a
  -- read on a FIFO that a background shell writes to after 300 ms.
  local rfd, wfd, fifo_path = helper.fifo()
  local late
  assert(luring.read(r, rfd, 64, 0, function(_, res, data) late = data end))
  assert(os.execute("(sleep 0.3; printf late > " .. fifo_path .. ") >/dev/null 2>&1 &"))
  t0 = now()
  within(5, "submit_and_wait(r, 100) with one request", function()
    assert(luring.submit_and_wait(r, 100) == 1)
  end)
  local waited = now() - t0
  assert(waited >= 0.2, ("returned after %.3f s, before the completion"):format(waited))
  assert(waited < 5, ("returned after %.3f s"):format(waited))
  assert(luring.do_cqes(r) == 1)
  assert(late == "late", tostring(late))

  -- Completions already in the CQ count: with one ready and nothing else in flight,
  -- a wait for more returns at once.
  assert(luring.write(r, wfd, "x", 0))  -- the FIFO has room: completes at once
  assert(luring.submit_and_wait(r, 1) == 1)
  t0 = now()
  within(5, "submit_and_wait(r, 100) with one completion ready", function()
    assert(luring.submit_and_wait(r, 100) == 0)
  end)
  assert(now() - t0 < 1)
  assert(luring.do_cqes(r) == 1)
  r:close()
end)

helper.run_cases(cases)
