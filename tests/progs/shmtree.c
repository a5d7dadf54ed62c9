/* A parent and a child sharing MAP_SHARED|MAP_ANONYMOUS memory, which cryo
 * cannot yet restore as one object: the dump must be refused by name.
 * Check: the child's writes are visible to the parent. */
#include <sys/mman.h>

#include "scenario.h"

static volatile char *shared;

static void check(void)
{
	SCN_EXPECT(shared[0] == 'c', "shared byte is %d, want the child's 'c'", shared[0]);
}

int main(void)
{
	scn_init("shmtree");
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		scn_die("mmap: %s", strerror(errno));
	if (fork() == 0) {
		shared[0] = 'c';
		for (;;)
			pause();
	}
	while (shared[0] != 'c')
		scn_sleep_ms(5);
	scn_install_check();
	scn_ready();
	scn_loop(check);
}
