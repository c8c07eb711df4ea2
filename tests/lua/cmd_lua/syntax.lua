local t = {
  x = = 1,
}
