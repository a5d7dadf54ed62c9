// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * fake-restorer - TEST DOUBLE of the binfmt_cr handoff interface, NOT of
 * cryo. It stands where the module's "restorer=" parameter points during
 * the qemu tests and only reports what the kernel handed it, so the guest
 * suite can check the interface:
 *
 *   argv       = { restorer, "--binfmt-exec", <image path>, <argv of the exec...> }
 *   AT_EXECFD  = an fd open on the image (not close-on-exec), readable
 *   credentials = the caller's: the image's mode bits never count
 *
 * Output, one item a line:
 *   FAKE-RESTORER argc=N
 *   argv[i]=...
 *   execfd=FD
 *   head=<first 8 bytes read from FD at offset 0>
 *   fdflags=<fcntl(F_GETFD)>
 *   uid=R euid=E gid=G egid=EG
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long fd;
	char head[16] = "";
	ssize_t n;
	int i;

	printf("FAKE-RESTORER argc=%d\n", argc);
	for (i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	errno = 0;
	fd = getauxval(AT_EXECFD);
	if (!fd && errno) {
		printf("execfd=none\n");
	} else {
		printf("execfd=%lu\n", fd);
		n = pread((int)fd, head, 8, 0);
		if (n >= 0)
			head[n] = '\0';
		else
			strcpy(head, "<unreadable>");
		printf("head=%s\n", head);
		printf("fdflags=%d\n", fcntl((int)fd, F_GETFD));
	}
	printf("uid=%d euid=%d gid=%d egid=%d\n", (int)getuid(), (int)geteuid(),
	       (int)getgid(), (int)getegid());
	return 0;
}
