# ports/memcached/bitcode.mk: read by make after memcached's own Makefile
# (make -f Makefile -f bitcode.mk memcached.bc): the server's bitcode for
# mvedsua-xfgen, each source compiled with the flags of its object, then
# linked into one module.
MVEDSUA_BC = $(patsubst %.c,%.c.bc,$(filter %.c,$(memcached_SOURCES)))

%.c.bc: %.c
	$(CC) $(DEFS) $(DEFAULT_INCLUDES) $(INCLUDES) $(memcached_CPPFLAGS) $(CPPFLAGS) \
	  $(AM_CFLAGS) $(CFLAGS) -MMD -MF $@.d -emit-llvm -c -o $@ $<

-include $(MVEDSUA_BC:%=%.d)

memcached.bc: $(MVEDSUA_BC)
	$(MVEDSUA_LLVM_LINK) -o $@ $^
