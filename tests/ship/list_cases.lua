-- SPDX-License-Identifier: Apache-2.0
-- lua5.4 list_cases.lua test_x.lua: prints the names of the test's cases, one a line,
-- without running them (helper.run_cases is replaced before the script runs). minroot.sh
-- uses it to run each case on its own where there is no shell to run them for it.
local script = assert(arg and arg[1], "usage: lua5.4 list_cases.lua test_x.lua")
local helper = require "helper"
helper.run_cases = function(cases)
  for _, c in ipairs(cases) do print(c[1]) end
  os.exit(0)
end
arg = { [0] = script }  -- luacheck: ignore 121 (the script reads its own name there)
dofile(script)
error(script .. " never called helper.run_cases")
