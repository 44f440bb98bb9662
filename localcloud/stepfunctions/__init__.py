"""stepfunctions"""
