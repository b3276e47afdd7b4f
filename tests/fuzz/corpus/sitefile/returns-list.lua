local t = {} for i = 1, 10 do t[i] = string.rep("x", i) end return t
