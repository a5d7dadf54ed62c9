/* vecregs: vector and floating-point state held in registers across a
 * blocking system call, where a dump finds the process.
 *
 * Loop: load ymm0-15 (xmm0-15 without AVX) with a pattern that changes
 * every round and MXCSR with a non-default rounding mode, then, in the
 * same asm statement, nanosleep 20 ms with a raw syscall and store the
 * registers back; they must hold the pattern (the kernel keeps them across
 * a syscall, and so must cryo, whether it finishes its work or is killed
 * midway and the process finds its own way back).
 *
 * Check: no round so far saw a changed register. */
#include "scenario.h"

#define NREG 16

static unsigned char want[NREG * 32] __attribute__((aligned(32)));
static unsigned char got[NREG * 32] __attribute__((aligned(32)));
static unsigned rounds, bad_rounds;
static char first_bad[160];

static void round_avx(const struct timespec *ts, uint32_t *mxcsr_in, uint32_t *mxcsr_out)
{
	register long rax __asm__("rax") = SYS_nanosleep;

	__asm__ volatile("ldmxcsr (%[mi])\n\t"
			 "vmovdqa 0(%[w]), %%ymm0\n\t"   "vmovdqa 32(%[w]), %%ymm1\n\t"
			 "vmovdqa 64(%[w]), %%ymm2\n\t"  "vmovdqa 96(%[w]), %%ymm3\n\t"
			 "vmovdqa 128(%[w]), %%ymm4\n\t" "vmovdqa 160(%[w]), %%ymm5\n\t"
			 "vmovdqa 192(%[w]), %%ymm6\n\t" "vmovdqa 224(%[w]), %%ymm7\n\t"
			 "vmovdqa 256(%[w]), %%ymm8\n\t" "vmovdqa 288(%[w]), %%ymm9\n\t"
			 "vmovdqa 320(%[w]), %%ymm10\n\t" "vmovdqa 352(%[w]), %%ymm11\n\t"
			 "vmovdqa 384(%[w]), %%ymm12\n\t" "vmovdqa 416(%[w]), %%ymm13\n\t"
			 "vmovdqa 448(%[w]), %%ymm14\n\t" "vmovdqa 480(%[w]), %%ymm15\n\t"
			 "syscall\n\t"
			 "vmovdqa %%ymm0, 0(%[g])\n\t"   "vmovdqa %%ymm1, 32(%[g])\n\t"
			 "vmovdqa %%ymm2, 64(%[g])\n\t"  "vmovdqa %%ymm3, 96(%[g])\n\t"
			 "vmovdqa %%ymm4, 128(%[g])\n\t" "vmovdqa %%ymm5, 160(%[g])\n\t"
			 "vmovdqa %%ymm6, 192(%[g])\n\t" "vmovdqa %%ymm7, 224(%[g])\n\t"
			 "vmovdqa %%ymm8, 256(%[g])\n\t" "vmovdqa %%ymm9, 288(%[g])\n\t"
			 "vmovdqa %%ymm10, 320(%[g])\n\t" "vmovdqa %%ymm11, 352(%[g])\n\t"
			 "vmovdqa %%ymm12, 384(%[g])\n\t" "vmovdqa %%ymm13, 416(%[g])\n\t"
			 "vmovdqa %%ymm14, 448(%[g])\n\t" "vmovdqa %%ymm15, 480(%[g])\n\t"
			 "stmxcsr (%[mo])\n\t"
			 "vzeroupper"
			 : "+r"(rax)
			 : [w] "r"(want), [g] "r"(got), [mi] "r"(mxcsr_in), [mo] "r"(mxcsr_out),
			   "D"(ts), "S"(0)
			 : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
			   "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
			   "xmm14", "xmm15");
}

static void round_sse(const struct timespec *ts, uint32_t *mxcsr_in, uint32_t *mxcsr_out)
{
	register long rax __asm__("rax") = SYS_nanosleep;

	__asm__ volatile("ldmxcsr (%[mi])\n\t"
			 "movdqa 0(%[w]), %%xmm0\n\t"   "movdqa 32(%[w]), %%xmm1\n\t"
			 "movdqa 64(%[w]), %%xmm2\n\t"  "movdqa 96(%[w]), %%xmm3\n\t"
			 "movdqa 128(%[w]), %%xmm4\n\t" "movdqa 160(%[w]), %%xmm5\n\t"
			 "movdqa 192(%[w]), %%xmm6\n\t" "movdqa 224(%[w]), %%xmm7\n\t"
			 "movdqa 256(%[w]), %%xmm8\n\t" "movdqa 288(%[w]), %%xmm9\n\t"
			 "movdqa 320(%[w]), %%xmm10\n\t" "movdqa 352(%[w]), %%xmm11\n\t"
			 "movdqa 384(%[w]), %%xmm12\n\t" "movdqa 416(%[w]), %%xmm13\n\t"
			 "movdqa 448(%[w]), %%xmm14\n\t" "movdqa 480(%[w]), %%xmm15\n\t"
			 "syscall\n\t"
			 "movdqa %%xmm0, 0(%[g])\n\t"   "movdqa %%xmm1, 32(%[g])\n\t"
			 "movdqa %%xmm2, 64(%[g])\n\t"  "movdqa %%xmm3, 96(%[g])\n\t"
			 "movdqa %%xmm4, 128(%[g])\n\t" "movdqa %%xmm5, 160(%[g])\n\t"
			 "movdqa %%xmm6, 192(%[g])\n\t" "movdqa %%xmm7, 224(%[g])\n\t"
			 "movdqa %%xmm8, 256(%[g])\n\t" "movdqa %%xmm9, 288(%[g])\n\t"
			 "movdqa %%xmm10, 320(%[g])\n\t" "movdqa %%xmm11, 352(%[g])\n\t"
			 "movdqa %%xmm12, 384(%[g])\n\t" "movdqa %%xmm13, 416(%[g])\n\t"
			 "movdqa %%xmm14, 448(%[g])\n\t" "movdqa %%xmm15, 480(%[g])\n\t"
			 "stmxcsr (%[mo])"
			 : "+r"(rax)
			 : [w] "r"(want), [g] "r"(got), [mi] "r"(mxcsr_in), [mo] "r"(mxcsr_out),
			   "D"(ts), "S"(0)
			 : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
			   "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
			   "xmm14", "xmm15");
}

int main(void)
{
	int avx = __builtin_cpu_supports("avx");
	size_t width = avx ? 32 : 16;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	scn_init("vecregs");
	scn_install_check();
	scn_ready();
	for (;;) {
		/* round-toward-zero, all exceptions masked: not the default 0x1f80 */
		uint32_t mxcsr_in = 0x7f80, mxcsr_out = 0;

		rounds++;
		memset(got, 0, sizeof(got));
		for (size_t i = 0; i < sizeof(want); i++)
			want[i] = (unsigned char)(i * 7 + rounds * 13 + 1);
		if (avx)
			round_avx(&ts, &mxcsr_in, &mxcsr_out);
		else
			round_sse(&ts, &mxcsr_in, &mxcsr_out);
		for (int r = 0; r < NREG; r++) {
			if (!memcmp(want + r * 32, got + r * 32, width))
				continue;
			if (!bad_rounds++)
				snprintf(first_bad, sizeof(first_bad),
					 "round %u: %s%d changed (byte 0: %02x, want %02x; byte %zu: %02x, want %02x)",
					 rounds, avx ? "ymm" : "xmm", r, got[r * 32], want[r * 32],
					 width - 1, got[r * 32 + width - 1], want[r * 32 + width - 1]);
			break;
		}
		if (mxcsr_out != mxcsr_in && !bad_rounds++)
			snprintf(first_bad, sizeof(first_bad), "round %u: mxcsr %#x, want %#x",
				 rounds, mxcsr_out, mxcsr_in);
		{
			uint32_t dflt = 0x1f80;

			__asm__ volatile("ldmxcsr %0" : : "m"(dflt));
		}
		if (scn_check_requested) {
			scn_check_requested = 0;
			scn_check_begin();
			SCN_EXPECT(bad_rounds == 0, "%u of %u rounds saw changed registers; first: %s",
				  bad_rounds, rounds, first_bad);
			scn_check_end();
		}
	}
}
