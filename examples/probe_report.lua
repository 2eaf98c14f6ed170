-- SPDX-License-Identifier: Apache-2.0
-- What io_uring this kernel offers, from Lua: lua5.4 probe_report.lua
local luring = require "luring"

local report = luring.probe()
if not report.available then print(report.cause, report.reason, report.fix) end
for _, op in ipairs(report.ops) do print(op.code, op.name, op.supported) end
