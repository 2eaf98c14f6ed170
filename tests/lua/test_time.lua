-- SPDX-License-Identifier: Apache-2.0
-- placeholder: being written
os.exit(77)
