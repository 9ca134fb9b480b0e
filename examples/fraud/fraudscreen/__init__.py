"""A fraud-screening cascade for the APLS example: workload generator and stage handlers."""
