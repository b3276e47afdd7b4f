-- needs: none
-- The base64 module: both alphabets, optional padding, strict decoding with
-- the offset of the first bad byte, and misuse raising.
local t = require "test"
local base64 = require "base64"

local vectors = {
  { "", "", "" },
  { "f", "Zg==", "Zg" },
  { "fo", "Zm8=", "Zm8" },
  { "foo", "Zm9v", "Zm9v" },
  { "foob", "Zm9vYg==", "Zm9vYg" },
  { "fooba", "Zm9vYmE=", "Zm9vYmE" },
  { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
}
for _, v in ipairs(vectors) do
  local plain, padded, unpadded = v[1], v[2], v[3]
  t.eq(base64.encode(plain), padded, "encode " .. plain)
  t.eq(base64.encode(plain, { pad = false }), unpadded, "encode " .. plain .. " without padding")
  t.eq(base64.decode(padded), plain, "decode " .. padded)
  t.eq(base64.decode(padded, { pad = false }), plain, "decode " .. padded .. " with padding optional")
  t.eq(base64.decode(unpadded, { pad = false }), plain, "decode " .. unpadded .. " with padding optional")
end

t.eq(base64.encode("\xfb\xff\xfe"), "+//+", "standard alphabet")
t.eq(base64.encode("\xfb\xff\xfe", { url = true }), "-__-", "URL alphabet")
t.eq(base64.encode("\xfb\xff", { url = true, pad = false }), "-_8", "URL alphabet without padding")
t.eq(base64.encode("\xfb\xff", { url = false, pad = true }), "+/8=", "options spelled out")
t.eq(base64.decode("-_8=", { url = true }), "\xfb\xff", "decode the URL alphabet")
t.eq(base64.decode("-_8", { url = true, pad = false }), "\xfb\xff", "decode the URL alphabet unpadded")
t.eq(base64.encode("alice:s3cret"), "YWxpY2U6czNjcmV0", "kubectl's auth field: base64 of user:password")

local all = {}
for i = 0, 255 do all[#all + 1] = string.char(i) end
all = table.concat(all)
for _, opts in ipairs { {}, { url = true }, { pad = false }, { url = true, pad = false } } do
  local name = "bytes 0..255 round trip url=" .. tostring(opts.url) .. " pad=" .. tostring(opts.pad)
  t.eq(base64.decode(base64.encode(all, opts), opts), all, name)
end
t.eq(base64.decode(base64.encode("a\0b\0")), "a\0b\0", "NUL bytes survive")

-- expected failures: nil plus the offset of the first bad byte
local bad = {
  { "Zm9v!A==", nil, "invalid base64 at byte 4" },
  { "Zm9v YQ==", nil, "invalid base64 at byte 4" },
  { "Zm9vYQ==\n", nil, "invalid base64 at byte 8" },
  { "-__-", nil, "invalid base64 at byte 0" },
  { "+//+", { url = true }, "invalid base64 at byte 0" },
  { "Zg==Zg==", nil, "invalid base64 at byte 2" },
  { "Zm9v=", nil, "invalid base64 at byte 4" },
  { "Zg===", nil, "invalid base64 at byte 4" },
  { "Zh==", nil, "invalid base64 at byte 1" },
  { "Zm9=", nil, "invalid base64 at byte 2" },
  { "Zg", nil, "invalid base64 length" },
  { "Zg=", nil, "invalid base64 length" },
  { "Zg=", { pad = false }, "invalid base64 length" },
  { "Zm9vY", { pad = false }, "invalid base64 length" },
  { "Z", nil, "invalid base64 length" },
}
for _, b in ipairs(bad) do
  local got, err = base64.decode(b[1], b[2])
  local shown = b[1]:gsub("%c", function(c) return "\\" .. c:byte() end)
  t.eq({ got, err }, { nil, b[3] }, "decode '" .. shown .. "' -> " .. b[3])
end

-- misuse raises
t.raises("bad argument #1 to 'base64.encode' (string expected, got nil)", "encode(nil)", base64.encode, nil)
t.raises("bad argument #1 to 'base64.decode' (string expected, got table)", "decode({})", base64.decode, {})
t.raises("bad argument #2 to 'base64.encode' (table expected, got string)", "encode with string options",
  base64.encode, "x", "url")
t.raises("bad argument #2 to 'base64.encode' (unknown option 'x')", "encode with an unknown option",
  base64.encode, "x", { x = true })
t.raises("bad argument #2 to 'base64.decode' (unknown option 'padding')", "decode with an unknown option",
  base64.decode, "eA==", { padding = false })
t.raises("bad argument #2 to 'base64.decode' (unknown option '1')", "decode with a positional option",
  base64.decode, "eA==", { true })
t.raises("bad argument #2 to 'base64.encode' (unknown option 'url", "an option name with a NUL",
  base64.encode, "x", { ["url\0x"] = true })
t.raises("bad argument #2 to 'base64.encode' (option 'url' must be a boolean)", "a non-boolean option",
  base64.encode, "x", { url = 1 })
t.eq(base64.encode(12), "MTI=", "a number is taken as its string, like string functions do")

return t.done()
