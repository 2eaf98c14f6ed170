-- SPDX-License-Identifier: Apache-2.0
-- The scheduler of luring.async: tasks are coroutines, every wait is an io_uring request
-- (or a queue/join wait between tasks), and one loop runs them all on one ring.
--
-- A round: resume the tasks that are ready, submit everything they queued and wait in
-- one io_uring_enter (for the first completion or the nearest deadline), dispatch. A
-- completion resumes its task directly from dispatch: each task has one continuation
-- (task.cb) made when it is spawned, so a request allocates no closure. A task waits on
-- at most one kernel request, and that request's completion is the only thing that
-- resumes it then: cancelling or timing out cancels the request in the kernel
-- (IORING_OP_ASYNC_CANCEL) and the task wakes when its CQE arrives, so no completion is
-- ever stale and none is lost (a request that completed anyway keeps its result).
local luring = require "luring"

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_running, co_close, co_isyieldable = coroutine.running, coroutine.close,
                                             coroutine.isyieldable
local now = luring.now
local traceback = debug.traceback
local pack, unpack = table.pack, table.unpack
local ECANCELED = -luring.errno.ECANCELED
local EINTR = -luring.errno.EINTR

local core = {}

-- The error value a cancelled task's blocking call raises.
core.cancelled = setmetatable({}, {
  __name = "luring.async.cancelled",
  __tostring = function() return "luring.async: task cancelled" end,
})
local cancelled = core.cancelled

local loop = nil  -- the running loop (see core.run)
-- The task of each coroutine: the running task is task_of[co_running()]. (Tasks are
-- resumed from dispatch in C too, so no Lua variable could follow which one runs.)
local task_of = setmetatable({}, { __mode = "k" })
-- The ring knows each task's coroutine too (luring._task), and whether its waits may
-- take the fast path of luring._await: while its alert (below) is not set.
local set_task = luring._task

-- ---- Timers: a binary heap of records { at = seconds, pos = index, task, kind } ----

local function heap_swap(h, i, j)
  h[i], h[j] = h[j], h[i]
  h[i].pos, h[j].pos = i, j
end

local function heap_up(h, i)
  while i > 1 do
    local p = i // 2
    if h[p].at <= h[i].at then return end
    heap_swap(h, i, p)
    i = p
  end
end

local function heap_down(h, i)
  local n = #h
  while true do
    local l, s = 2 * i, i
    if l <= n and h[l].at < h[s].at then s = l end
    if l + 1 <= n and h[l + 1].at < h[s].at then s = l + 1 end
    if s == i then return end
    heap_swap(h, i, s)
    i = s
  end
end

local function timer_add(t, at)
  -- A deadline that never comes (math.huge) or is not a number (NaN) is no deadline.
  if not (at < math.huge) then return end  -- luacheck: ignore 581 (NaN is the point)
  local h = loop.timers
  t.at = at
  h[#h + 1] = t
  t.pos = #h
  heap_up(h, t.pos)
end

local function timer_remove(t)
  local i = t.pos
  if not i then return end
  local h = loop.timers
  local n = #h
  t.pos = nil
  if i ~= n then
    h[i] = h[n]
    h[i].pos = i
    h[n] = nil
    heap_down(h, i)
    heap_up(h, i)
  else
    h[n] = nil
  end
end

-- ---- Tasks ----

local Task = {}
Task.__index = Task
Task.__name = "luring.async.task"

local function make_ready(task, ...)
  local L = loop
  local n = select("#", ...)
  task.wake_n = n
  if n > 0 then task.wake1, task.wake2 = ... end
  L.ready[L.ready_tail] = task
  L.ready_tail = L.ready_tail + 1
end

-- Wakes `task` if it is blocked on `what`; true if it was.
local function wake_blocked(task, what, ...)
  if task.blocked_on ~= what then return false end
  task.blocked_on = nil
  make_ready(task, ...)
  return true
end

-- Keeps non-string error values as they are; remembers a traceback for the report.
local function on_error(err)
  local task = task_of[co_running()]
  local tb = traceback(tostring(err), 2)
  if task then task.traceback = tb end
  if type(err) == "string" then return tb end
  return err
end

local report_error, finish

function finish(task)
  local L = loop
  local r = task.result
  -- A failure nobody joins is reported first, while the task still counts as alive: an
  -- on_error handler may wait (log through an async file), and run waits for it. A
  -- cancel while it waits ends the report, not run.
  if not (task.joiners and #task.joiners > 0) and not r[1] and task ~= L.main and
     r[2] ~= cancelled then
    local ok, err = pcall(report_error, task)
    if not ok and err ~= cancelled then error(err, 0) end
  end
  task.state = "done"
  timer_remove(task.io_timer)  -- (still in the heap with a deadline of its last wait)
  set_task(L.ring, task.co, nil)
  L.alive = L.alive - 1
  L.tasks[task] = nil
  local joiners = task.joiners
  if joiners then
    for i = 1, #joiners do
      wake_blocked(joiners[i], task)
    end
    task.joiners = nil
  end
  -- fn failed: run is to raise its error, so the other tasks are cancelled (they unwind,
  -- closing their <close> variables) instead of being waited for, perhaps forever.
  if task == L.main and not task.result[1] then
    for t in pairs(L.tasks) do t:cancel() end
  end
end

-- A task's coroutine runs this: the function, protected, then the task's end, still
-- inside the coroutine (dispatch resumes it directly, so nobody else sees it end).
local function body(task, fn, ...)
  if task.cancelled then
    task.result = pack(false, cancelled)
  else
    task.result = pack(xpcall(fn, on_error, ...))
  end
  finish(task)
end

-- Runs a ready `task` until it next waits. Only an internal error can raise here (the
-- body is protected): it ends run.
local function step(task, ...)
  local ok, err = co_resume(task.co, ...)
  if not ok then
    co_close(task.co)
    error(err, 0)
  end
end

function report_error(task)
  task.reported = true
  local handler = loop.on_error
  if handler then
    handler(task.result[2], task.traceback)
  else
    io.stderr:write("luring.async: a task failed and nobody joined it: ",
                    task.traceback or tostring(task.result[2]), "\n")
  end
end

-- The running task, or an error naming the function `what` when there is none.
local function need_task(what)
  local task = task_of[co_running()]
  if task == nil then
    if loop == nil then error(what .. ": not inside luring.async.run", 3) end
    error(what .. ": not inside a task of luring.async.run (a nested coroutine cannot wait)", 3)
  end
  return task
end
core.need_task = need_task

-- After a wait: raises if the task was cancelled or one of its async.timeout scopes
-- expired while it waited.
local function check_interrupt(task)
  if task.cancelled then error(cancelled, 0) end
  local scope = task.expired
  if scope then error(scope, 0) end
end

-- task.alert is true while anything needs the slow end of a wait: a cancel, an expired
-- async.timeout scope, or a request cancelled by its deadline (timed_out). The hot
-- paths test that one field after each wait.
local function update_alert(task)
  local alert = (task.cancelled or task.expired or task.timed_out) and true or false
  task.alert = alert
  if loop and loop.tasks[task] then set_task(loop.ring, task.co, not alert) end
end
-- (A task of a run that ended in an error is in no loop's tasks: its ring is gone.)
local function raise_alert(task)
  task.alert = true
  if loop and loop.tasks[task] then set_task(loop.ring, task.co, false) end
end
core.update_alert = update_alert

-- The end of a wait when task.alert is set: raises for a cancel or an expired scope
-- (first closing a descriptor the request made, with `makes_fd`), or turns a request
-- that its deadline cancelled into nil (timed out). Otherwise the results, unchanged.
local function after_wait(task, makes_fd, res, a, b, c)
  local timed_out = task.timed_out
  if timed_out then
    task.timed_out = false  -- before raising: a task that catches the error goes on clean
    update_alert(task)
  end
  if (task.cancelled or task.expired) and makes_fd and res and res >= 0 then
    luring.close_fd_now(res)
  end
  check_interrupt(task)
  -- Cancelled in time: -ECANCELED, or -EINTR for a request a kernel worker was running.
  if timed_out and (res == ECANCELED or res == EINTR) then return nil end
  return res, a, b, c
end
core.after_wait = after_wait

-- luring._await's functions: one call queues a request and waits for it, returning
-- cqe, res, results... (cqe false: the task's alert was set meanwhile, and the caller
-- ends the wait with after_wait), or nothing when the general path is needed.
core.aw = luring._await()

-- Before a wait starts, when task.alert is set: a task already cancelled (by itself, or
-- while it ran) or whose async.timeout expired raises at once instead of waiting first.
local function before_wait(task)
  if task.cancelled or task.expired then check_interrupt(task) end
end
core.before_wait = before_wait
core.task_of = task_of

-- The deadline of the kernel request the task waits for now (io_deadline; false: none).
-- Its record in the heap (io_timer) is not taken out when the wait ends, and a later
-- wait's deadline, usually later still, only changes io_deadline: a server whose sockets
-- have timeouts makes two heap operations per timeout period and task, not per request.
-- When the record comes up, fire_timers puts it back at io_deadline, or drops it.
local function set_io_deadline(task, at)
  task.io_deadline = at
  local t = task.io_timer
  if not t.pos then
    timer_add(t, at)
  elseif at < t.at then
    timer_remove(t)
    timer_add(t, at)
  end
end

core.set_io_deadline = set_io_deadline

-- For a fast path (core.aw) with a timeout: the calling task's deadline, `seconds` from
-- now; the task, or nil outside one (core.aw then declines, and the general path
-- raises). The caller sets task.io_deadline = false after the wait.
function core.arm_deadline(seconds)
  local task = task_of[co_running()]
  if task then set_io_deadline(task, now() + seconds) end
  return task
end

-- The blocking primitive: waits for the kernel request `handle` that the calling task
-- queued with task.cb as its callback. `deadline` (now() seconds, or nil): when it
-- passes first, the request is cancelled and await returns nil (timed out) unless the
-- request completed anyway, in which case its results come back as usual. Returns
-- res, a, b, c (the callback's arguments after the cqe). With `makes_fd`, a descriptor
-- the request made is closed if the task is interrupted instead of receiving it.
local function await(task, handle, deadline, makes_fd)
  task.pending = handle
  if deadline then set_io_deadline(task, deadline) end
  local _, res, a, b, c = co_yield()  -- dispatch resumes it with (cqe, res, ...)
  task.pending = false  -- not nil: see new_task
  if deadline then task.io_deadline = false end
  if task.alert then return after_wait(task, makes_fd, res, a, b, c) end
  return res, a, b, c
end
core.await = await

-- Queues a request with `op(ring, ..., cb)`: when the SQ is full, submits and
-- tries again. Returns the handle. A task already cancelled starts nothing: it raises.
-- The body of core.start and core.start_for: `guard` is nil or the object (socket,
-- file) whose descriptor the request is for.
local function start_guarded(guard, op, ...)
  local task = task_of[co_running()]
  if task and task.alert then before_wait(task) end
  -- Inside a C function that called Lua (a sort comparator, say) the task cannot yield
  -- to wait: raise before queuing a request whose completion would resume it.
  if task and not co_isyieldable() then error("attempt to yield across a C-call boundary", 3) end
  local ring = loop.ring
  local h = op(ring, ...)
  if h then return h end
  ring:submit()
  h = op(ring, ...)
  if h then return h end
  -- The kernel has not taken what is queued yet (an SQPOLL poller takes the SQEs when it
  -- runs): a task lets the loop go round meanwhile; anything else tries again at once.
  local deadline = now() + 5
  repeat
    if task then
      loop.sq_full = true
      make_ready(task)
      co_yield()
      if task.alert then before_wait(task) end
      if guard and guard.closed then return nil end
    end
    ring:submit()
    h = op(ring, ...)
    if h then return h end
  until now() > deadline
  error("luring.async: the submission queue stays full", 3)
end

function core.start(op, ...) return start_guarded(nil, op, ...) end

-- core.start_for(obj, op, ...): as core.start, for a request on the descriptor of
-- `obj` (a socket, a file): if `obj` was closed while the task waited for room in the SQ,
-- nothing is queued (the number may be another file's by now) and it returns nil.
function core.start_for(obj, op, ...) return start_guarded(obj, op, ...) end

-- Queues IORING_OP_ASYNC_CANCEL for the request `handle`, without a callback: the
-- cancelled request's own completion is what wakes its task. When the SQ is full,
-- submits first (a cancel that could not be queued would leave the task waiting).
local function cancel_request(handle)
  local ring = loop.ring
  if ring:cancel(handle) then return end
  local deadline = now() + 5
  repeat  -- under SQPOLL the poller frees room in a moment
    ring:submit()
    if ring:cancel(handle) then return end
  until now() > deadline
  error("luring.async: the submission queue stays full", 0)
end
core.cancel_request = cancel_request

-- Makes a waiting task notice task.cancelled or task.expired: a kernel request is
-- cancelled (its completion wakes the task), any other wait ends now.
local function interrupt(task)
  -- A task of a run that ended in an error waits on nothing any more: its ring is gone.
  if not (loop and loop.tasks[task]) then return end
  if task.pending then
    cancel_request(task.pending)
  elseif task.blocked_on then
    local what = task.blocked_on
    if what.remove_waiter then what:remove_waiter(task) end
    task.interrupted = true
    wake_blocked(task, what)
  else
    -- Perhaps a wait by the fast path, which only the ring has noted. If that request
    -- is over (the task is ready to run), cancelling its handle finds nothing.
    local h = luring._task_pending(loop.ring, task.co)
    if h then cancel_request(h) end
  end
end

-- Blocks the calling task on `what` (a queue or a task, which wakes it with
-- wake_blocked) until then or a deadline; returns true if woken, false on timeout.
-- Whoever wakes a blocked task clears blocked_on first, so it is woken only once. A
-- task that `what` woke but that was cancelled (or timed out by async.timeout) before
-- it ran hands the wake-up on (what:pass_on()): a queue's value or free place is then
-- not left with nobody woken to take it.
local function block(task, what, deadline)
  if task.alert then before_wait(task) end
  task.blocked_on = what
  task.wait_timed_out = false
  task.interrupted = false
  local timer = nil
  if deadline then
    timer = task.wait_timer
    timer_add(timer, deadline)
  end
  co_yield()
  if timer then timer_remove(timer) end
  if task.alert then
    if not task.interrupted and not task.wait_timed_out and what.pass_on then what:pass_on() end
    check_interrupt(task)
  end
  return not task.wait_timed_out
end

core.block = block
core.make_ready = make_ready
core.wake_blocked = wake_blocked

local function new_task(fn, ...)
  local L = loop
  -- pending (the handle of the kernel request waited for) is false, not nil, when there
  -- is none: a field that keeps going nil and back makes a table rehash each time.
  local task = setmetatable({ state = "ready", timed_out = false, alert = false,
                              pending = false, io_deadline = false }, Task)
  local co = co_create(body)
  task.co = co
  task.cb = co  -- a coroutine as callback: dispatch resumes it with the completion
  task_of[co] = task
  set_task(L.ring, co, true)
  L.tasks[task] = true
  task.io_timer = { task = task, kind = "io" }
  task.wait_timer = { task = task, kind = "wait" }
  L.alive = L.alive + 1
  -- The first resume hands over the function and its arguments.
  local args = pack(task, fn, ...)
  L.ready[L.ready_tail] = task
  L.ready_tail = L.ready_tail + 1
  task.start_args = args
  return task
end

function Task:join(timeout)
  local task = need_task("join")
  if task == self then error("join: a task cannot join itself", 2) end
  if self.state ~= "done" then
    local joiners = self.joiners
    if not joiners then
      joiners = {}
      self.joiners = joiners
    end
    joiners[#joiners + 1] = task
    local deadline = timeout and timeout >= 0 and now() + timeout or nil
    if not block(task, self, deadline) then return nil, "timeout" end
  end
  local r = self.result
  return unpack(r, 1, r.n)
end

-- Removes a joiner that timed out or was cancelled.
function Task:remove_waiter(task)
  local joiners = self.joiners
  if not joiners then return end
  for i = #joiners, 1, -1 do
    if joiners[i] == task then table.remove(joiners, i) end
  end
end

function Task:cancel()
  if self.state == "done" or self.cancelled then return end
  self.cancelled = true
  raise_alert(self)
  if self ~= task_of[co_running()] then interrupt(self) end
end

function Task:status()
  return self.state == "done" and "done" or (self.cancelled and "cancelling" or "running")
end

Task.__tostring = function(self) return "luring.async.task (" .. self:status() .. ")" end

-- ---- The loop ----

local function run_ready(L)
  -- Only the tasks ready when the round starts: one that keeps yielding with sleep(0)
  -- lets the loop submit and dispatch between its turns.
  local last = L.ready_tail - 1
  while L.ready_head <= last do
    local task = L.ready[L.ready_head]
    L.ready[L.ready_head] = nil
    L.ready_head = L.ready_head + 1
    local args = task.start_args
    if args then
      task.start_args = nil
      step(task, unpack(args, 1, args.n))
    elseif task.wake_n == 0 then
      step(task)
    else
      step(task, task.wake1, task.wake2)
    end
  end
end

-- Deadlines that have passed: a task waiting on a kernel request gets it cancelled (it
-- wakes at its completion); one waiting on a queue or join wakes now.
local function fire_timers(L, t)
  local h = L.timers
  while h[1] and h[1].at <= t do
    local timer = h[1]
    timer_remove(timer)
    local task = timer.task
    if timer.kind == "io" then
      local at = task.io_deadline
      if at and at > t then
        timer_add(timer, at)  -- a later wait's deadline
      elseif at then
        task.io_deadline = false
        -- The request: one of await, or of a fast path (only the ring notes those).
        local req = task.pending or luring._task_pending(L.ring, task.co)
        if req then
          task.timed_out = true
          raise_alert(task)
          cancel_request(req)
        end
      end
    elseif timer.kind == "wait" then
      local what = task.blocked_on
      if what then
        if what.remove_waiter then what:remove_waiter(task) end
        task.wait_timed_out = true
        wake_blocked(task, what)
      end
    else  -- an async.timeout scope
      if task.state ~= "done" and not task.expired then
        task.expired = timer.scope
        raise_alert(task)
        if task ~= task_of[co_running()] then interrupt(task) end
      end
    end
  end
end

local function run_loop(L)
  local ring = L.ring
  local run_once = ring.run_once
  local timers = L.timers
  while L.alive > 0 do
    if L.ready_head < L.ready_tail then
      run_ready(L)
      if L.alive == 0 then break end
    end
    local timeout
    if L.ready_head < L.ready_tail then
      timeout = 0
      if L.sq_full then
        -- A task waits for room in the SQ (its SQPOLL poller is behind): wait a moment
        -- for a completion, leaving the CPU to the poller, instead of spinning.
        L.sq_full = false
        timeout = 0.001
      end
    else
      local first = timers[1]
      if first then
        timeout = first.at - now()
        if timeout < 0 then timeout = 0 elseif timeout > 1e9 then timeout = 1e9 end
      end
    end
    -- One call: submit what the tasks queued, wait for a completion or the nearest
    -- deadline (with a timeout it sleeps even when nothing is in flight), dispatch.
    local handled, left = run_once(ring, timeout)
    if timers[1] then fire_timers(L, now()) end
    if handled == 0 and left == 0 and not timeout and L.ready_head == L.ready_tail and
       L.alive > 0 then
      error(("luring.async.run: %d task(s) wait for each other forever (queues or joins "
             .. "with nothing left to wake them)"):format(L.alive), 0)
    end
  end
end

local DEFAULT_FLAGS = luring.setup.SINGLE_ISSUER | luring.setup.DEFER_TASKRUN |
                      luring.setup.TASKRUN_FLAG

-- core.run(options, fn, ...): see async.run.
function core.run(options, fn, ...)
  if loop then error("luring.async.run: already running (run does not nest)", 3) end
  local flags = options.flags
  local entries = options.entries or 256
  local ring
  if flags == nil then
    -- By default the kernel runs completion work only when the loop enters it, in one
    -- batch (DEFER_TASKRUN, 6.1; TASKRUN_FLAG says when there is some): a quarter less
    -- CPU per request for a server (tools/bench/RESULTS.md). Older kernels: a plain ring.
    local ok, r = pcall(luring.queue_init, entries, DEFAULT_FLAGS)
    ring = ok and r or luring.queue_init(entries)
  else
    ring = luring.queue_init(entries, { flags = flags })
  end
  -- A round's receives go to the kernel after its sends: on loopback the data a receive
  -- waits for is then often there already, where it would arm a poll and wait for a
  -- wakeup (a third less system time per ping-pong round trip here).
  luring._receives_last(ring, options.receives_last ~= false)
  -- A send the socket can take now is done at once by send(2), without a request, its
  -- completion and a resume (await.cpp): a tenth of a server's CPU per request. Not by
  -- default on an SQPOLL ring, whose requests cost the task no system call.
  local sqpoll = flags ~= nil and (flags & luring.setup.SQPOLL) ~= 0
  local direct = options.direct_send
  if direct == nil then direct = not sqpoll end
  luring._direct_send(ring, direct and true or false)
  -- Each enter names a registered slot, not the fd (5.18): one fd lookup less per enter.
  -- Where the kernel cannot (older, or the thread's 16 slots taken), the fd serves.
  if options.register_ring ~= false then ring:register_ring_fd() end
  local L = {
    ring = ring, ready = {}, ready_head = 1, ready_tail = 1, alive = 0, timers = {},
    on_error = options.on_error, objects = setmetatable({}, { __mode = "k" }),
    tasks = {},  -- the tasks that have not ended
    sqpoll = sqpoll,
    -- With the option, sockets receive by one multishot recv each (socket.lua), until
    -- the kernel refuses it (before 6.0).
    recv_multishot = options.recv_multishot == true,
  }
  loop = L
  local main = new_task(fn, ...)
  L.main = main
  local ok, err = pcall(run_loop, L)
  -- Release everything the loop made: tasks left waiting when it failed (closing their
  -- coroutines closes their <close> variables), descriptors still open, then the ring
  -- (which cancels and reaps whatever is still in flight).
  for task in pairs(L.tasks) do co_close(task.co) end
  for obj in pairs(L.objects) do obj:close() end
  ring:close()
  loop = nil
  if not ok then error(err, 0) end
  local r = main.result
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

function core.spawn(fn, ...)
  if loop == nil then error("spawn: not inside luring.async.run", 2) end
  if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  return new_task(fn, ...)
end

-- The running loop's table, for the other parts of the layer.
function core.loop() return loop end

function core.ring()
  if loop == nil then error("ring: not inside luring.async.run", 2) end
  return loop.ring
end

-- Closes `fd` through the ring (IORING_OP_CLOSE, no callback), behind what is queued:
-- for SQPOLL rings, whose poller reads the SQ when it likes. Never raises for a
-- cancelled task (it runs in <close> handlers as a task unwinds).
function core.close_behind(fd)
  local ring = loop.ring
  local deadline = now() + 1
  while not ring:close_fd(fd) do
    ring:submit()
    if now() > deadline then
      luring.close_fd_now(fd)
      return
    end
  end
  ring:submit()
end

-- The running loop's ring, or nil outside run (objects made there get no ring).
function core.loop_ring() return loop and loop.ring end

-- Registers an object (socket, file) whose close() the end of run must call.
function core.track(obj)
  if loop then loop.objects[obj] = true end
end
function core.untrack(obj)
  if loop then loop.objects[obj] = nil end
end

function core.sleep(seconds)
  local task = need_task("sleep")
  if seconds ~= nil and type(seconds) ~= "number" then
    error("bad argument #1 to 'sleep' (number expected, got " .. type(seconds) .. ")", 2)
  end
  seconds = seconds or 0
  if task.alert then before_wait(task) end
  if seconds <= 0 then
    make_ready(task)
    co_yield()
    check_interrupt(task)
    return
  end
  local h = core.start(loop.ring.timeout, seconds, 0, nil, task.cb)
  await(task, h)
end

-- async.timeout(seconds, fn, ...): fn's results, or nil, "timeout".
function core.timeout(seconds, fn, ...)
  local task = need_task("timeout")
  if type(seconds) ~= "number" then
    error("bad argument #1 to 'timeout' (number expected, got " .. type(seconds) .. ")", 2)
  end
  local scope = setmetatable({}, { __tostring = function() return "luring.async: timeout" end })
  local timer = { task = task, kind = "scope", scope = scope }
  timer_add(timer, now() + seconds)
  local r = pack(pcall(fn, ...))
  timer_remove(timer)
  if task.expired == scope then
    task.expired = nil
    update_alert(task)
  end
  if not r[1] then
    if r[2] == scope then return nil, "timeout" end
    error(r[2], 0)
  end
  return unpack(r, 2, r.n)
end

-- ---- Queues between tasks ----

local Queue = {}
Queue.__index = Queue
Queue.__name = "luring.async.queue"

function core.queue(max)
  if max ~= nil and (math.type(max) ~= "integer" or max < 1) then
    error("bad argument #1 to 'queue' (a size >= 1 or nil expected)", 2)
  end
  return setmetatable({ items = {}, head = 1, tail = 1, max = max, getters = {}, putters = {} },
                      Queue)
end

function Queue:__len() return self.tail - self.head end

local function wake_first(q, list)
  while #list > 0 do
    local task = table.remove(list, 1)
    if wake_blocked(task, q) then return end
  end
end

-- q:put(v): appends v, waiting while the queue is full.
function Queue:put(v)
  while self.max and self.tail - self.head >= self.max do
    local task = need_task("put")
    self.putters[#self.putters + 1] = task
    block(task, self)
  end
  self.items[self.tail] = v
  self.tail = self.tail + 1
  wake_first(self, self.getters)
end

-- q:get([timeout]): the oldest value, waiting while the queue is empty; nil, "timeout"
-- when the timeout passes first.
function Queue:get(timeout)
  local task = need_task("get")
  local deadline = timeout and timeout >= 0 and now() + timeout or nil
  while self.tail == self.head do
    self.getters[#self.getters + 1] = task
    if not block(task, self, deadline) then return nil, "timeout" end
  end
  local v = self.items[self.head]
  self.items[self.head] = nil
  self.head = self.head + 1
  wake_first(self, self.putters)
  return v
end

-- A woken task that could not take its turn (see block) passes it to the next waiter.
function Queue:pass_on()
  if self.tail > self.head then wake_first(self, self.getters) end
  if not self.max or self.tail - self.head < self.max then wake_first(self, self.putters) end
end

function Queue:remove_waiter(task)
  for _, list in ipairs({ self.getters, self.putters }) do
    for i = #list, 1, -1 do
      if list[i] == task then table.remove(list, i) end
    end
  end
end

core.now = now
core.Task = Task

return core
