//! The Lua scripts: compare-and-set of a whole claim batch (C3–C7) and the fenced checkpoint
//! (C13). Each runs atomically on the server; each touches only keys of one scope (one hash tag),
//! so it works on Redis Cluster.
//!
//! [`redis::Script`] sends `EVALSHA` and, when the server answers `NOSCRIPT` (first use, or after
//! a restart or `SCRIPT FLUSH`), loads the script and retries once.

use redis::Script;

/// Claims of one scope. `KEYS[1]` = the scope's ownership hash. `ARGV` = groups of four per claim:
/// partition id, expected etag (`""` = create, C3), owner id, new etag (fresh, from the
/// client, so etags never repeat, C5). Returns one string per claim: the new
/// `last_modified_time` in µs since the epoch if won, `""` if lost (C6).
///
/// Time comes from the server (`TIME`) and never goes back for a partition:
/// `max(now, previous)` (C5). µs since the epoch stay below 2^53, exact in a Lua double.
const CLAIM_BATCH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #ARGV / 4
-- One HMGET for the whole batch and one HSET for all winners (in chunks: unpack has a stack
-- limit), not two calls per claim: a 32-claim batch costs little more than a single claim.
local fields = {}
for i = 1, n do
  fields[i] = ARGV[(i - 1) * 4 + 1]
end
local current = {}
for s = 1, n, 500 do
  local part = redis.call('HMGET', KEYS[1], unpack(fields, s, math.min(s + 499, n)))
  for j = 1, #part do
    current[s + j - 1] = part[j]
  end
end
local out, writes = {}, {}
for i = 1, n do
  local base = (i - 1) * 4
  local partition, expected, owner, etag = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
  local cur = current[i]
  local wins, previous = false, 0
  if expected == '' then
    wins = (cur == false)
  elseif cur then
    local a = string.find(cur, '\n', 1, true)
    if a and string.sub(cur, 1, a - 1) == expected then
      local b = string.find(cur, '\n', a + 1, true)
      if not b then
        return redis.error_reply('CORRUPT ownership record of partition ' .. partition)
      end
      wins = true
      previous = tonumber(string.sub(cur, a + 1, b - 1)) or 0
    end
  end
  if wins then
    local stamp = string.format('%.0f', math.max(now, previous))
    writes[#writes + 1] = partition
    writes[#writes + 1] = etag .. '\n' .. stamp .. '\n' .. owner
    out[i] = stamp
  else
    out[i] = ''
  end
end
for s = 1, #writes, 1000 do
  redis.call('HSET', KEYS[1], unpack(writes, s, math.min(s + 999, #writes)))
end
return out
"#;

/// Fenced checkpoint. `KEYS[1]` = ownership hash, `KEYS[2]` = checkpoint hash of one scope.
/// `ARGV[1]` = partition id, `ARGV[2]` = required owner (not empty), `ARGV[3]` = the encoded
/// checkpoint. Writes and returns 1 only if the partition's owner is `ARGV[2]`; else returns 0.
const SET_CHECKPOINT_FENCED: &str = r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  return 0
end
local a = string.find(current, '\n', 1, true)
local b = a and string.find(current, '\n', a + 1, true)
if not b then
  return redis.error_reply('CORRUPT ownership record of partition ' .. ARGV[1])
end
if string.sub(current, b + 1) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"#;

/// The scripts of a store, hashed once.
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    pub(crate) claim_batch: Script,
    pub(crate) set_checkpoint_fenced: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            claim_batch: Script::new(CLAIM_BATCH),
            set_checkpoint_fenced: Script::new(SET_CHECKPOINT_FENCED),
        }
    }
}
