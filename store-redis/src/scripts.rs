//! The Lua scripts: compare-and-set of a whole claim batch (C3–C7) and the fenced checkpoint
//! (C13). Each runs atomically on the server; each touches only keys of one scope (one hash tag),
//! so it works on Redis Cluster.
//!
//! [`redis::Script`] sends `EVALSHA` and, when the server answers `NOSCRIPT` (first use, or after
//! a restart or `SCRIPT FLUSH`), loads the script and retries once.

use redis::Script;

/// Claims of one scope. `KEYS[1]` = the scope's ownership hash. `ARGV` = groups of four per claim:
/// partition id, expected etag (`""` = create, C3), owner id, new etag (fresh, from the
/// client, so etags never repeat, C5). Returns one entry per claim: the new
/// `last_modified_time` in µs since the epoch (an integer) if won, nil if lost (C6).
///
/// Time comes from the server (`TIME`) and never goes back for a partition:
/// `max(now, previous)` (C5). µs since the epoch stay below 2^53, exact in a Lua double.
///
/// Per claim the script allocates as little as Lua allows (strings are interned, so every new
/// string costs a hash and an allocation): the stamp of the batch is formatted once; the stored
/// etag is compared in place (`find` anchored at 1 plus the separator byte, no substring); only
/// the previous stamp is cut out, to keep the maximum; the new record is one concatenation with
/// the batch's `"\n<stamp>\n"` separator (another only if the previous stamp is later); and the
/// result is the stamp as a number, not a string per claim.
const CLAIM_BATCH: &str = r#"
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local now_number = tonumber(now)
local now_sep = '\n' .. now .. '\n'
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
local out, writes, w = {}, {}, 0
for i = 1, n do
  local base = (i - 1) * 4
  local expected, cur = ARGV[base + 2], current[i]
  local wins, sep, stamp = false, now_sep, now_number
  if expected == '' then
    wins = (cur == false)
  elseif cur then
    local e = #expected
    -- The stored etag is everything before the first newline (an etag holds none, C11).
    if string.byte(cur, e + 1) == 10 and string.find(cur, expected, 1, true) == 1 then
      local b = string.find(cur, '\n', e + 2, true)
      if not b then
        return redis.error_reply('CORRUPT ownership record of partition ' .. ARGV[base + 1])
      end
      wins = true
      local previous = string.sub(cur, e + 2, b - 1)
      local p = tonumber(previous)
      if p and p > now_number then
        sep, stamp = '\n' .. string.format('%.0f', p) .. '\n', p
      end
    end
  end
  if wins then
    writes[w + 1] = ARGV[base + 1]
    writes[w + 2] = ARGV[base + 4] .. sep .. ARGV[base + 3]
    w = w + 2
    out[i] = stamp
  else
    out[i] = false
  end
end
for s = 1, w, 1000 do
  redis.call('HSET', KEYS[1], unpack(writes, s, math.min(s + 999, w)))
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
