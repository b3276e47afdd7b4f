-- xcsreg.pager: a LIST, whole, over as many pages as the server answers,
-- as client-go's pager does (k8s.io/client-go/tools/pager/pager.go): each
-- page asks limit=PAGE_SIZE (as kubectl's --chunk-size) and the next is
-- asked with the metadata.continue of the last; a continue token the
-- server no longer holds (410 Gone, reason Expired) makes one full LIST
-- without limit (the pager's FullListIfExpired). A server may answer fewer
-- items than limit and still continue: only an absent continue ends it.
local json = require "json"
local log = require "log"

local pager = {}

pager.PAGE_SIZE = 500
-- A server that keeps answering a continue token leads nowhere past this.
pager.MAX_PAGES = 10000

-- client:list(path, query) over every page: the list (items of all pages,
-- the metadata of the last without continue) | nil, error. An answer
-- whose items are not a list is returned as it is, for its reader's
-- checks (xcsreg.objects) to refuse.
function pager.list(client, path, query)
  local q = {}
  for k, v in pairs(query or {}) do q[k] = v end
  q.limit = tostring(pager.PAGE_SIZE)
  local list, err = client:list(path, q)
  if not list then return nil, err end
  if type(list) ~= "table" then return list end
  local items = list.items
  if items == nil or items == json.null then items = json.array {} end
  if type(items) ~= "table" or json.kind(items) == "object" then return list end
  local seen, pages = {}, 1
  while type(list.metadata) == "table" and type(list.metadata.continue) == "string" and list.metadata.continue ~= "" do
    local token = list.metadata.continue
    if seen[token] or pages >= pager.MAX_PAGES then
      return nil, string.format("LIST %s: the server's continue token does not lead to an end (%d pages)", path, pages)
    end
    seen[token] = true
    q.continue = token
    local page, perr = client:list(path, q)
    if not page and type(perr) == "table" and perr.code == 410 then
      log.debug("LIST %s: continue token expired (%s): listing it whole", path, tostring(perr))
      q.continue, q.limit = nil, nil
      return client:list(path, q)
    end
    if not page then return nil, perr end
    local more = page.items
    if more == nil or more == json.null then more = {} end
    if type(more) ~= "table" or json.kind(more) == "object" then return page end
    table.move(more, 1, #more, #items + 1, items)
    list, pages = page, pages + 1
  end
  if type(list.metadata) == "table" then list.metadata.continue, list.metadata.remainingItemCount = nil, nil end
  list.items = items
  return list
end

return pager
