/*
 * umiak's vDSO: clock_gettime, gettimeofday and time without leaving the VM.
 *
 * The host keeps the [vvar] page (mapped read-only one page below this image)
 * up to date under a sequence lock:
 *   +0  seq        u32, odd while the host is writing
 *   +8  base_tsc   guest TSC at base_ns
 *   +16 mult       ns per TSC tick, as a 32.32 fixed-point number
 *   +24 base_ns    CLOCK_MONOTONIC (ns) at base_tsc
 *   +32 rt_offset  CLOCK_REALTIME - CLOCK_MONOTONIC (ns, signed)
 * Clocks the page does not describe fall back to the real syscall, and so does
 * everything while mult is 0 (a platform without a usable TSC).
 */
	.intel_syntax noprefix
	.text

/* rax = CLOCK_MONOTONIC ns, r9 = realtime offset; clobbers rcx, rdx, r8 */
	.type mono_ns, @function
mono_ns:
1:	mov	r8d, dword ptr [rip + vvar]
	test	r8d, 1
	jnz	3f
	rdtsc
	shl	rdx, 32
	or	rax, rdx
	sub	rax, qword ptr [rip + vvar + 8]
	jns	2f
	xor	eax, eax
2:	mul	qword ptr [rip + vvar + 16]
	shrd	rax, rdx, 32
	add	rax, qword ptr [rip + vvar + 24]
	mov	r9, qword ptr [rip + vvar + 32]
	cmp	r8d, dword ptr [rip + vvar]
	jne	1b
	ret
3:	pause
	jmp	1b
	.size mono_ns, .-mono_ns

	.globl __vdso_clock_gettime
	.type __vdso_clock_gettime, @function
__vdso_clock_gettime:
	cmp	qword ptr [rip + vvar + 16], 0
	je	.Lsys_clock
	cmp	edi, 1		/* CLOCK_MONOTONIC */
	je	.Lmono
	cmp	edi, 4		/* CLOCK_MONOTONIC_RAW */
	je	.Lmono
	cmp	edi, 6		/* CLOCK_MONOTONIC_COARSE */
	je	.Lmono
	cmp	edi, 7		/* CLOCK_BOOTTIME */
	je	.Lmono
	cmp	edi, 0		/* CLOCK_REALTIME */
	je	.Lreal
	cmp	edi, 5		/* CLOCK_REALTIME_COARSE */
	je	.Lreal
.Lsys_clock:
	mov	eax, 228	/* everything else: clock_gettime(2) */
	syscall
	ret
.Lreal:
	call	mono_ns
	add	rax, r9
	jmp	.Lstore
.Lmono:
	call	mono_ns
.Lstore:
	mov	ecx, 1000000000
	xor	edx, edx
	div	rcx
	mov	qword ptr [rsi], rax
	mov	qword ptr [rsi + 8], rdx
	xor	eax, eax
	ret
	.size __vdso_clock_gettime, .-__vdso_clock_gettime

	.globl __vdso_gettimeofday
	.type __vdso_gettimeofday, @function
__vdso_gettimeofday:
	cmp	qword ptr [rip + vvar + 16], 0
	jne	0f
	mov	eax, 96		/* gettimeofday(2) */
	syscall
	ret
0:	mov	r10, rsi
	test	rdi, rdi
	jz	1f
	call	mono_ns
	add	rax, r9
	mov	ecx, 1000000000
	xor	edx, edx
	div	rcx
	mov	qword ptr [rdi], rax
	mov	rax, rdx
	mov	ecx, 1000
	xor	edx, edx
	div	rcx
	mov	qword ptr [rdi + 8], rax
1:	test	r10, r10
	jz	2f
	mov	qword ptr [r10], 0
2:	xor	eax, eax
	ret
	.size __vdso_gettimeofday, .-__vdso_gettimeofday

	.globl __vdso_time
	.type __vdso_time, @function
__vdso_time:
	cmp	qword ptr [rip + vvar + 16], 0
	jne	0f
	mov	eax, 201	/* time(2) */
	syscall
	ret
0:	mov	r10, rdi
	call	mono_ns
	add	rax, r9
	mov	ecx, 1000000000
	xor	edx, edx
	div	rcx
	test	r10, r10
	jz	1f
	mov	qword ptr [r10], rax
1:	ret
	.size __vdso_time, .-__vdso_time

	.globl __vdso_getcpu
	.type __vdso_getcpu, @function
__vdso_getcpu:
	mov	eax, 309
	syscall
	ret
	.size __vdso_getcpu, .-__vdso_getcpu

	.globl __vdso_clock_getres
	.type __vdso_clock_getres, @function
__vdso_clock_getres:
	mov	eax, 229
	syscall
	ret
	.size __vdso_clock_getres, .-__vdso_clock_getres

	.weak clock_gettime
	clock_gettime = __vdso_clock_gettime
	.weak gettimeofday
	gettimeofday = __vdso_gettimeofday
	.weak time
	time = __vdso_time
	.weak getcpu
	getcpu = __vdso_getcpu
	.weak clock_getres
	clock_getres = __vdso_clock_getres

	.section .note.GNU-stack,"",@progbits
