"""The deterministic generator of the demo city: 金水区 of Zhengzhou, sized like the seeds."""
