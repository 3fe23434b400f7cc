/* A C program on larder's C ABI, built against the installed package only. */
#include <larder/larder.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  char* text = larder_malloc(64);
  if (text == NULL || larder_usable_size(text) < 64) return 1;
  strcpy(text, "c");
  text = larder_realloc(text, 4096);
  if (text == NULL || strcmp(text, "c") != 0) return 1;
  larder_free(text);
  puts("c consumer ok");
  return 0;
}
