# gnuplot -e "datafile='soak_samples.tsv'; outfile='docs/soak.png'; warmup=300; titletext='...'" bench/soak_chart.gp
# Two panels over the run of bench/soak.sh: the proxy's RSS and VmHWM (MiB) above, its open
# descriptors and threads below. The dashed line ends the warm-up.
set terminal pngcairo size 1000,640 enhanced font "sans,10" noenhanced
set output outfile
set datafile separator "\t"
set key autotitle columnhead
set multiplot layout 2,1 title titletext
set grid
set xrange [0:*]
set key outside right top vertical Left reverse samplen 2 width 2
set lmargin 10
set rmargin 28

set ylabel "MiB"
set yrange [0:*]
set arrow 1 from first warmup/60.0, graph 0 to first warmup/60.0, graph 1 nohead dt 2 lc rgb "#777777"
unset xlabel
set format x ""
plot datafile using ($1/60.0):($2/1024.0) with lines lw 1.5 lc rgb "#1f77b4" title "RSS (VmRSS)", \
     datafile using ($1/60.0):($3/1024.0) with lines lw 1 dt 3 lc rgb "#d62728" title "VmHWM (peak so far)"

set ylabel "count"
set xlabel "minutes since start"
set format x "%g"
set yrange [0:*]
plot datafile using ($1/60.0):4 with lines lw 1 lc rgb "#2ca02c" title "open descriptors", \
     datafile using ($1/60.0):5 with lines lw 1 lc rgb "#98df8a" title "  of which sockets", \
     datafile using ($1/60.0):8 with lines lw 1.5 lc rgb "#9467bd" title "threads"
unset multiplot
