//! The directory's Lua scripts: each runs atomically in Redis. They read a room owner's node
//! key by name (`ARGV` holds the prefix), which a single Redis allows and Redis Cluster would
//! not.

use std::sync::LazyLock;

use redis::Script;

/// A claim, atomic. KEYS = the claiming node's key, the room's owner key, the fence counter,
/// the fence the room's snapshots were last written with (kept by the store; the new fence
/// exceeds it, also after Redis lost the counter); ARGV = the claiming node's id, the node key prefix. Returns `{'lost'}` if the claiming node's
/// key is gone; `{'mine', fence}` if it owns the room already; `{'elsewhere', node, fence,
/// node_json}` if a node whose key exists owns it; otherwise takes the room with a new fence
/// and returns `{'mine', fence}`. The fence is read back as a string: Lua prints large numbers
/// in exponent notation.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local owner = redis.call('GET', KEYS[2])
if owner then
    local node, fence = string.match(owner, '^(.+) (%d+)$')
    if node == ARGV[1] then return {'mine', fence} end
    if node then
        local info = redis.call('GET', ARGV[2] .. node)
        if info then return {'elsewhere', node, fence, info} end
    end
end
local function greater(a, b)
    if #a ~= #b then return #a > #b end
    return a > b
end
local written = redis.call('GET', KEYS[4])
local counter = redis.call('GET', KEYS[3])
if written and string.match(written, '^%d+$')
    and not (counter and string.match(counter, '^%d+$') and greater(counter, written)) then
    redis.call('SET', KEYS[3], written)
end
redis.call('INCR', KEYS[3])
local fence = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. fence)
return {'mine', fence}
",
    )
});

/// A lookup, atomic. KEYS = the room's owner key; ARGV = the node key prefix. Returns `{node,
/// fence, node_json}` if a node whose key exists owns the room, else nil.
pub(crate) static OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local owner = redis.call('GET', KEYS[1])
if not owner then return false end
local node, fence = string.match(owner, '^(.+) (%d+)$')
if not node then return false end
local info = redis.call('GET', ARGV[1] .. node)
if not info then return false end
return {node, fence, info}
",
    )
});

/// Re-asserting a node's rooms after Redis lost its keys, atomic. KEYS = the node's key, the
/// fence counter, then one owner key per room; ARGV = the node id, then each room's fence
/// (decimal). Returns `{'lost'}` if the node key is gone. Otherwise sets every absent owner key
/// to `"<node> <fence>"`, raises the counter to at least the largest fence, and returns `{'ok',
/// i...}`: the 0-based indices of the rooms whose owner key names something else. Fences are
/// compared as decimal strings (Lua numbers are exact only up to 2^53).
pub(crate) static REASSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local function greater(a, b)
    if #a ~= #b then return #a > #b end
    return a > b
end
local current = redis.call('GET', KEYS[2])
if not (current and string.match(current, '^%d+$')) then current = '0' end
local top = current
local answer = {'ok'}
for i = 3, #KEYS do
    local fence = ARGV[i - 1]
    local mine = ARGV[1] .. ' ' .. fence
    if not redis.call('SET', KEYS[i], mine, 'NX') and redis.call('GET', KEYS[i]) ~= mine then
        answer[#answer + 1] = tostring(i - 3)
    end
    if greater(fence, top) then top = fence end
end
if top ~= current then redis.call('SET', KEYS[2], top) end
return answer
",
    )
});

/// Pruning the set of nodes, atomic. KEYS = the set, then the node key of each id to prune;
/// ARGV = those ids. Removes each id whose node key is (still) absent: a node may have
/// registered again since it was found gone. Returns how many were removed.
pub(crate) static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pruned = 0
for i, node in ipairs(ARGV) do
    if redis.call('EXISTS', KEYS[i + 1]) == 0 then
        pruned = pruned + redis.call('SREM', KEYS[1], node)
    end
end
return pruned
",
    )
});
