"""KVM platform: guest code runs natively under hardware virtualization (or PVM)."""
